/**
 * The client's DYNAMIC streams: a -D (SOCKS) connection or -W's standard
 * input and output. Unlike -L, the client waits for the server's dial reply
 * before any byte is forwarded, so a SOCKS client hears the truth (success
 * only after the dial succeeded, the matching error otherwise). With
 * resumption, the conn id is reserved before the header goes out and the
 * conn is adopted after the reply: neither header nor reply is counted in
 * its byte sequence, on either side.
 */
import type net from 'node:net';
import { ErrorCode, type Session, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { bridge } from './bridge.js';
import { logConnection, type ConnectionFields } from './connection-log.js';
import { StreamKind } from './control-messages.js';
import { awaitDialReply, type DialOutcome } from './dial-reply.js';
import type { LocalListener } from './local-listeners.js';
import type { TunnelLogger } from './logger.js';
import type { ConnTable } from './resume/conn-table.js';
import type { SessionSlot } from './session-slot.js';
import { acceptSocks } from './socks/accept.js';
import { encodeStreamHeader, type LocalForwardHeader } from './stream-header.js';
import { connNotCarried, type TrafficRoute } from './tunnel-stats.js';

/** A -D listener: where it listens. */
export interface DynamicSpec {
  bindHost: string;
  bindPort: number;
}


export interface DynamicDeps {
  slot: SessionSlot;
  /** The resumable session's conns, when the session resumes. */
  table(): ConnTable<LocalForwardHeader> | null;
  logger: TunnelLogger;
  timings: { headerTimeoutMs: number; dialTimeoutMs: number; waitForSessionMs: number };
  /** SOCKS connections closed for a bad or missing handshake, for the debug log. */
  counters: { socksRefused: number };
}

/**
 * Asks the server to dial `target` for `socket`, and once it did, carries
 * the socket's bytes (bridged, or as a resumable conn). `beforeCarry` runs
 * between the reply and the first forwarded byte (the SOCKS success reply).
 * Resolves with the outcome; on failure the socket is the caller's. The
 * connection counts in `route`, from the reply on (or as not carried).
 */
export async function dialThroughServer(
  socket: net.Socket,
  target: { host: string; port: number },
  deps: DynamicDeps,
  fields: ConnectionFields,
  route: TrafficRoute,
  beforeCarry?: () => void,
): Promise<DialOutcome> {
  const outcome = await dialAndCarry(socket, target, deps, fields, route, beforeCarry);
  if (!outcome.ok) connNotCarried(route, outcome.failure === 'policy' ? 'refused' : 'dial_failed');
  return outcome;
}

async function dialAndCarry(
  socket: net.Socket,
  target: { host: string; port: number },
  deps: DynamicDeps,
  fields: ConnectionFields,
  route: TrafficRoute,
  beforeCarry?: () => void,
): Promise<DialOutcome> {
  const session: Session | null = deps.slot.current ?? (await deps.slot.wait(deps.timings.waitForSessionMs));
  if (session === null) return { ok: false, failure: 'failed', message: `not connected to the server within ${deps.timings.waitForSessionMs / 1000} s` };
  if (socket.destroyed) return { ok: false, failure: 'failed', message: 'the local connection went away' };
  const table = deps.table();
  const id = table?.reserveId();
  const header: LocalForwardHeader = { host: target.host, port: target.port };
  let stream: Stream;
  try {
    stream = session.open({ type: StreamKind.DYNAMIC });
  } catch (error) {
    return { ok: false, failure: 'failed', message: `cannot open a stream: ${describeError(error)}` };
  }
  stream.on('error', () => {});
  stream.write(encodeStreamHeader(id === undefined ? header : { ...header, conn: id }));
  // The server's dial has its own time limit; this one only guards against a server that never answers.
  const outcome = await awaitDialReply(stream, deps.timings.dialTimeoutMs + deps.timings.headerTimeoutMs);
  if (!outcome.ok) return outcome;
  if (socket.destroyed) {
    stream.reset(ErrorCode.CANCEL);
    return { ok: false, failure: 'failed', message: 'the local connection went away' };
  }
  beforeCarry?.();
  const closed = logConnection(deps.logger, { ...fields, streamId: stream.id });
  if (table && id !== undefined && !session.isClosed) {
    const conn = table.adopt(id, socket, { header, onEnd: closed, route });
    table.attach(conn, stream, { bytes: 0, fin: false });
  } else {
    bridge(socket, stream, closed, route);
    socket.resume();
  }
  return { ok: true };
}

/** A connection to a -D listener: the SOCKS handshake, then the server dials. */
export async function serveSocksConnection(listener: LocalListener<DynamicSpec>, socket: net.Socket, deps: DynamicDeps, route: TrafficRoute): Promise<void> {
  socket.on('error', () => {});
  const forward = `-D ${listener.address.address}:${listener.address.port}`;
  const peer = `${socket.remoteAddress}:${socket.remotePort}`;
  let request;
  try {
    request = await acceptSocks(socket, deps.timings.headerTimeoutMs);
  } catch (error) {
    const socksRefused = ++deps.counters.socksRefused;
    deps.logger.debug({ forward, peer, error: describeError(error), socksRefused }, 'closed a SOCKS connection');
    return;
  }
  const target = `${request.host}:${request.port}`;
  const outcome = await dialThroughServer(socket, request, deps, { forward, peer, target }, route, () => request.answer(null));
  if (outcome.ok) return;
  request.answer(outcome.failure);
  deps.logger.info({ forward, peer, target, reason: outcome.failure }, `SOCKS connection refused: ${outcome.message}`);
}
