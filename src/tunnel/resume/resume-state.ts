/**
 * The resume exchange, as pure functions: what a side tells its peer when a
 * new transport re-attaches the tunnel session, and what it does with each
 * conn given what the peer told it.
 *
 * Each side sends a `ResumeMessage`: for every conn it still holds, how much
 * of the peer's byte sequence it has received (`receivedBytes`, and whether
 * the FIN); and a watermark, the highest conn id *of the peer's parity* it
 * has ever seen (conn ids are odd when the client opened the conn, even when
 * the server did; each side allocates its own in increasing order).
 *
 * Both sides then run `decideResume()` on the same facts and reach matching
 * verdicts without another round trip:
 *
 * | the peer's message                 | our verdict     | the peer's verdict for it |
 * |------------------------------------|-----------------|---------------------------|
 * | lists it, both FINs not through    | `attach`        | `attach`                  |
 * | lists it, both FINs received       | `complete`      | `complete`                |
 * | omits it, ours, id > its watermark | `reopen`        | `await-reopen`            |
 * | omits it, else (it forgot it)      | `complete` / `abort` | `unknown`            |
 *
 * A side forgets a conn only when it completes (its FIN acknowledged, the
 * peer's FIN received) or is aborted. So when the peer forgot a conn we
 * still hold, it completed or aborted it. It can only have completed it if
 * it received our FIN and we received its FIN: then we complete too (the
 * acks that would have said so were lost with the link; our replay buffer
 * may still hold bytes it did receive). Otherwise it must have aborted it,
 * with an RST the dead link never delivered: we abort too.
 *
 * "Seen" for the watermark means the conn's first stream arrived and its id
 * was read, even if the conn was refused at once. The integration must
 * raise it no later than it creates the conn, and process new conns in the
 * order their streams arrived; otherwise a conn the peer never saw may be
 * aborted instead of reopened (never duplicated or corrupted).
 */
import { TunnelError, TunnelErrorCode } from '../errors.js';
import type { PeerReceived } from './conn.js';

/** One conn in a resume message: what the sender has received of the receiver's byte sequence. */
export interface ResumeEntry {
  id: number;
  receivedBytes: number;
  finReceived: boolean;
}

/** What each side sends when a new transport re-attaches the tunnel session. */
export interface ResumeMessage {
  /** The highest conn id of the receiver's parity the sender has ever seen; 0 when none. */
  highestSeen: number;
  /** Every conn the sender still holds (not complete, not aborted). */
  conns: ResumeEntry[];
}

/** What a decision needs of a local conn. A `ResumableConn` has all of it; a conn still dialling its target is all zeros. */
export interface ConnSnapshot {
  readonly id: number;
  readonly sentBytes: number;
  readonly ackedBytes: number;
  readonly sentFin: boolean;
  readonly finAcked: boolean;
  readonly receivedBytes: number;
  readonly finReceived: boolean;
}

/** This side's view, for `decideResume()`. */
export interface LocalResumeState {
  /** True on the side that opens odd conn ids (the client). */
  isClient: boolean;
  conns: Iterable<ConnSnapshot>;
  /** The watermark this side sent: the highest conn id of the peer's parity it has ever seen. */
  highestSeen: number;
}

export type ResumeDecision =
  /** Both hold it: attach a new stream with `conn.attach(stream, peer)`. */
  | { action: 'attach'; id: number; peer: PeerReceived }
  /**
   * Nothing is left to send either way: call `conn.ack(peer.bytes, peer.fin)`
   * and open no stream; the conn reports `'complete'` once its socket closed.
   */
  | { action: 'complete'; id: number; peer: PeerReceived }
  /** Ours and the peer never saw it: open it again as a new conn, `conn.attach(stream, { bytes: 0, fin: false })`. */
  | { action: 'reopen'; id: number }
  /** The peer aborted it: `conn.abort()`. */
  | { action: 'abort'; id: number; reason: string }
  /** The peer's, and we never saw it: it will reopen it, as a new conn. */
  | { action: 'await-reopen'; id: number }
  /**
   * The peer holds it, we forgot it (completed or aborted). Nothing to do or
   * send: the peer finds it missing from our message and decides itself.
   */
  | { action: 'unknown'; id: number };

/** The entries of this side's resume message, one per conn it still holds. */
export function resumeEntries(conns: Iterable<ConnSnapshot>): ResumeEntry[] {
  const entries: ResumeEntry[] = [];
  for (const conn of conns) entries.push({ id: conn.id, receivedBytes: conn.receivedBytes, finReceived: conn.finReceived });
  return entries;
}

/**
 * Decides what to do with every conn either side holds. Pure. Throws a
 * TunnelError (ERR_MUXTUN_PROTOCOL) when the peer's message is malformed or
 * contradicts what it acknowledged before: end the session then.
 */
export function decideResume(local: LocalResumeState, peer: ResumeMessage): ResumeDecision[] {
  if (!isCount(peer.highestSeen)) throw protocolError(`resume: bad watermark ${String(peer.highestSeen)}`);
  if (!Array.isArray(peer.conns)) throw protocolError('resume: conns must be a list');
  const peerConns = new Map<number, ResumeEntry>();
  for (const entry of peer.conns) {
    if (!isCount(entry.id) || !isCount(entry.receivedBytes) || typeof entry.finReceived !== 'boolean') {
      throw protocolError(`resume: malformed entry for conn ${String(entry.id)}`);
    }
    if (peerConns.has(entry.id)) throw protocolError(`resume: conn ${entry.id} is listed twice`);
    peerConns.set(entry.id, entry);
  }

  const ownParity = local.isClient ? 1 : 0;
  const decisions: ResumeDecision[] = [];
  const known = new Set<number>();
  for (const conn of local.conns) {
    known.add(conn.id);
    const entry = peerConns.get(conn.id);
    if (entry) {
      checkPeerReceived(conn, entry);
      const peerReceived = { bytes: entry.receivedBytes, fin: entry.finReceived };
      // Both FINs through: nothing is left to carry. The peer sees the same two flags, so it decides the same.
      if (entry.finReceived && conn.finReceived) decisions.push({ action: 'complete', id: conn.id, peer: peerReceived });
      else decisions.push({ action: 'attach', id: conn.id, peer: peerReceived });
    } else if ((conn.id & 1) === ownParity && conn.id > peer.highestSeen) {
      // The peer never saw it: nothing of it can have been acknowledged or received.
      if (conn.ackedBytes > 0 || conn.finAcked || conn.receivedBytes > 0 || conn.finReceived) {
        throw protocolError(`resume: conn ${conn.id} is above the peer's watermark ${peer.highestSeen}, but the peer took part in it`);
      }
      decisions.push({ action: 'reopen', id: conn.id });
    } else if (conn.sentFin && conn.finReceived) {
      decisions.push({ action: 'complete', id: conn.id, peer: { bytes: conn.sentBytes, fin: true } });
    } else {
      decisions.push({
        action: 'abort',
        id: conn.id,
        reason: !conn.finReceived ? 'the peer dropped the connection before its FIN reached us' : 'the peer dropped the connection before our FIN was sent',
      });
    }
  }
  for (const entry of peerConns.values()) {
    if (known.has(entry.id)) continue;
    if ((entry.id & 1) !== ownParity && entry.id > local.highestSeen) decisions.push({ action: 'await-reopen', id: entry.id });
    else decisions.push({ action: 'unknown', id: entry.id });
  }
  return decisions;
}

function checkPeerReceived(conn: ConnSnapshot, entry: ResumeEntry): void {
  if (entry.receivedBytes < conn.ackedBytes || entry.receivedBytes > conn.sentBytes) {
    throw protocolError(
      `resume: the peer says it received ${entry.receivedBytes} bytes of conn ${conn.id}, which sent ${conn.sentBytes} and had ${conn.ackedBytes} acknowledged`,
    );
  }
  if (entry.finReceived && (!conn.sentFin || entry.receivedBytes !== conn.sentBytes)) {
    throw protocolError(`resume: the peer says it received the FIN of conn ${conn.id}, which was not sent there`);
  }
  if (!entry.finReceived && conn.finAcked) {
    throw protocolError(`resume: the peer says it lacks the FIN of conn ${conn.id}, which it acknowledged`);
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function protocolError(message: string): TunnelError {
  return new TunnelError(TunnelErrorCode.PROTOCOL, message);
}
