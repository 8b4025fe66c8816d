import type { Socket } from 'node:net';
import type { Stream } from '../../muxado/index.js';
import { createConnContext, ResumableConn, type ConnContext, type ConnEnd, type PeerReceived } from './conn.js';
import type { ResumeOptions } from './config.js';
import { connEnded, connOpened, endResult, type TrafficRoute } from '../tunnel-stats.js';
import { decideResume, resumeEntries, type ResumeDecision, type ResumeEntry, type ResumeMessage } from './resume-state.js';

/** How one conn came to be, so it can be opened again if the peer never saw it (`reopen`). */
export interface ConnOrigin<Header> {
  /** The stream header that opened it (without the conn id). */
  header: Header;
  /** Called once when it ends, for the per-connection log line. */
  onEnd?: ((end: ConnEnd) => void) | undefined;
  /** Where it counts while open and when it ends (tunnel-stats.ts); the conn's own byte counts are read. */
  route?: TrafficRoute | undefined;
}

/** An ack as it travels: conn id, bytes received, FIN received. */
export type AckEntry = [id: number, bytes: number, fin: boolean];

/** Bytes received on one conn that make an ack worth sending at once. */
const ACK_EVERY_BYTES = 256 * 1024;
/** The longest an ack waits for more bytes to batch with. */
const ACK_DELAY_MS = 20;
/** Most conn states one side may list at a resume: far above any real session's conns, and a bound on what a peer can make us hold. */
export const MAX_RESUME_CONNS = 1_000_000;
/** Entries per control message, so one stays well under the 16 KiB limit. */
export const ENTRIES_PER_MESSAGE = 300;

/**
 * The forwarded connections of one tunnel session, on one side, across the
 * transports that carry it: allocates conn ids (odd for the client, even for
 * the server), remembers the highest id of the peer's it has seen, batches
 * acks on one session-wide timer, and runs the resume exchange's decisions.
 */
export class ConnTable<Header> {
  readonly isClient: boolean;
  readonly context: ConnContext;
  readonly #conns = new Map<number, { conn: ResumableConn; origin: ConnOrigin<Header> }>();
  #nextId: number;
  #highestSeen = 0;
  #send: ((acks: AckEntry[]) => void) | null = null;
  readonly #pendingAcks = new Set<ResumableConn>();
  #ackTimer: NodeJS.Timeout | null = null;
  #ackSoon = false;
  /** Bytes re-sent at the last resume (for the log). */
  resentBytes = 0;

  constructor(isClient: boolean, options?: ResumeOptions) {
    this.isClient = isClient;
    this.#nextId = isClient ? 1 : 2;
    this.context = createConnContext(options, {
      onReceived: (conn, bytes) => this.#onReceived(conn, bytes),
      onComplete: (conn, end) => {
        const entry = this.#conns.get(conn.id);
        this.#conns.delete(conn.id);
        this.#pendingAcks.delete(conn);
        const route = entry?.origin.route;
        if (route) connEnded(route, conn, end.how === 'complete' ? 'ok' : endResult(end.error));
        entry?.origin.onEnd?.(end);
      },
    });
  }

  /** Conns held now, attached or not. */
  get size(): number {
    return this.#conns.size;
  }

  /** Bytes held for replay by this session's conns. */
  get replayBytes(): number {
    return this.context.budget.used;
  }

  get highestSeen(): number {
    return this.#highestSeen;
  }

  get(id: number): ResumableConn | undefined {
    return this.#conns.get(id)?.conn;
  }

  origin(id: number): ConnOrigin<Header> | undefined {
    return this.#conns.get(id)?.origin;
  }

  /**
   * A new id of this side's parity, for a conn that exists only once the
   * peer's dial succeeded (DYNAMIC streams): the header carries it, and
   * `adopt()` registers the conn after the dial reply.
   */
  reserveId(): number {
    const id = this.#nextId;
    this.#nextId += 2;
    return id;
  }

  /** A conn this side opens: a new id of its parity. It starts detached, reading its socket into the replay buffer. */
  open(socket: Socket, origin: ConnOrigin<Header>): ResumableConn {
    const id = this.reserveId();
    const conn = new ResumableConn(id, socket, this.context);
    this.#conns.set(id, { conn, origin });
    if (origin.route) connOpened(origin.route, conn);
    return conn;
  }

  /** The peer's conn id was read from a stream header: seen from now on, whatever becomes of it. */
  sawPeerId(id: number): boolean {
    if ((id & 1) === (this.isClient ? 1 : 0) || id <= 0) return false;
    if (id > this.#highestSeen) this.#highestSeen = id;
    return !this.#conns.has(id);
  }

  /** A conn the peer opened, once its target answered. */
  adopt(id: number, socket: Socket, origin: ConnOrigin<Header>): ResumableConn {
    const conn = new ResumableConn(id, socket, this.context);
    this.#conns.set(id, { conn, origin });
    if (origin.route) connOpened(origin.route, conn);
    return conn;
  }

  /** Where acks go while a transport is attached; null while detached (the resume exchange covers what is missed). */
  setAckSink(send: ((acks: AckEntry[]) => void) | null): void {
    this.#send = send;
    if (send === null && this.#ackTimer) {
      clearTimeout(this.#ackTimer);
      this.#ackTimer = null;
    }
  }

  /** The peer's acks: each conn drops what the peer has. Throws ERR_MUXTUN_PROTOCOL for an impossible one. */
  applyAcks(acks: readonly AckEntry[]): void {
    for (const [id, bytes, fin] of acks) this.get(id)?.ack(bytes, fin);
  }

  /** The transport died: every conn keeps its socket and waits for a new stream. */
  detachAll(): void {
    this.setAckSink(null);
    this.#pendingAcks.clear();
    for (const { conn } of this.#conns.values()) conn.detach();
  }

  /** The session is over for good: every conn is reset. */
  abortAll(reason: Error): void {
    this.setAckSink(null);
    for (const { conn } of [...this.#conns.values()]) conn.abort(reason);
    this.#conns.clear();
  }

  /** What this side tells the peer at resume, split into messages of a bounded size. */
  resumeMessages(): Array<{ highestSeen: number; conns: Array<[number, number, boolean]>; last: boolean }> {
    const entries = resumeEntries([...this.#conns.values()].map(({ conn }) => conn));
    const messages: Array<{ highestSeen: number; conns: Array<[number, number, boolean]>; last: boolean }> = [];
    for (let at = 0; at === 0 || at < entries.length; at += ENTRIES_PER_MESSAGE) {
      const chunk = entries.slice(at, at + ENTRIES_PER_MESSAGE).map((e): [number, number, boolean] => [e.id, e.receivedBytes, e.finReceived]);
      messages.push({ highestSeen: this.#highestSeen, conns: chunk, last: at + ENTRIES_PER_MESSAGE >= entries.length });
    }
    return messages;
  }

  /** Decides what becomes of each conn, given what the peer said (see resume-state.ts); counts what this side will re-send. */
  decide(peer: ResumeMessage): ResumeDecision[] {
    const decisions = decideResume({ isClient: this.isClient, conns: [...this.#conns.values()].map(({ conn }) => conn), highestSeen: this.#highestSeen }, peer);
    this.resentBytes = 0;
    for (const decision of decisions) {
      const conn = this.get(decision.id);
      if (conn && decision.action === 'attach') this.resentBytes += Math.max(0, conn.sentBytes - decision.peer.bytes);
      else if (conn && decision.action === 'reopen') this.resentBytes += conn.sentBytes;
    }
    return decisions;
  }

  /** Attaches a conn to its new stream. */
  attach(conn: ResumableConn, stream: Stream, peer: PeerReceived): void {
    conn.attach(stream, peer);
  }

  #onReceived(conn: ResumableConn, bytes: number): void {
    if (this.#send === null) return;
    this.#pendingAcks.add(conn);
    if (bytes === 0 || conn.receivedBytes - conn.reportedBytes >= ACK_EVERY_BYTES) {
      // At the end of this loop turn, not now: under a high connection rate
      // many conns end in one turn, and their FINs' acks then share one
      // control message instead of costing one each.
      if (!this.#ackSoon) {
        this.#ackSoon = true;
        setImmediate(this.#flushSoon);
      }
      return;
    }
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = null;
      this.#flushAcks();
    }, ACK_DELAY_MS);
  }

  readonly #flushSoon = (): void => {
    this.#ackSoon = false;
    this.#flushAcks();
  };

  #flushAcks(): void {
    if (this.#ackTimer) {
      clearTimeout(this.#ackTimer);
      this.#ackTimer = null;
    }
    const send = this.#send;
    if (send === null) return;
    const acks: AckEntry[] = [];
    for (const conn of this.#pendingAcks) {
      const ack = conn.takeAck();
      if (ack) acks.push([conn.id, ack.bytes, ack.fin]);
    }
    this.#pendingAcks.clear();
    for (let at = 0; at < acks.length; at += ENTRIES_PER_MESSAGE) send(acks.slice(at, at + ENTRIES_PER_MESSAGE));
  }
}

export type { ResumeEntry };
