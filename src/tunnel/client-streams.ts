import type net from 'node:net';
import { ErrorCode, StreamResetError, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { bridge, type BridgeEnd } from './bridge.js';
import { logConnection, type ConnectionFields } from './connection-log.js';
import { StreamKind } from './control-messages.js';
import { dialAndBridge } from './dial.js';
import { dialAndReply } from './dial-reply.js';
import { checkTarget, type TargetPattern } from './policy.js';
import { proxyHeaderFor, socketEnd, type ProxyProtocolVersion } from './proxy-protocol.js';
import { describeForward, proxyProtocolOf, type ForwardSpec } from './forward.js';
import type { LocalListener } from './local-listeners.js';
import type { TunnelLogger } from './logger.js';
import type { SessionSlot } from './session-slot.js';
import { encodeStreamHeader, isRemoteForwardHeader, readHeaderOrReset, type LocalForwardHeader, type RemoteForwardHeader } from './stream-header.js';
import { connNotCarried, type ClientStats, type DialTimes, type TrafficRoute } from './tunnel-stats.js';

/** Connections one -L listener lets wait for a session at once; more are reset. */
export const MAX_WAITING_PER_LISTENER = 128;

const waitingBy = new WeakMap<LocalListener, number>();

/**
 * A connection accepted by a -L listener: waits (bounded) for a session,
 * opens a stream whose header names the target, and bridges the two. The
 * header and the first bytes go right behind the SYN: zero round trips.
 */
export async function forwardLocalConnection(
  listener: LocalListener,
  socket: net.Socket,
  slot: SessionSlot,
  waitMs: number,
  logger: TunnelLogger,
  /** Where the connection counts (its forward's and -L's counters). */
  route: TrafficRoute,
  /** Once a session is up: hands the connection to it if that session resumes (true), else it is bridged here. */
  takeOver?: (socket: net.Socket) => boolean,
): Promise<void> {
  const { spec } = listener;
  const forward = describeForward('-L', { ...spec, bindPort: listener.address.port });
  // Until bridge() takes over, an error here just means the connection went away.
  const ignore = (): void => {};
  socket.on('error', ignore);
  let session = slot.current;
  if (session === null) {
    const waiting = waitingBy.get(listener) ?? 0;
    if (waiting >= MAX_WAITING_PER_LISTENER) {
      logger.warn({ forward, waiting }, 'not connected to the server and too many connections wait already; resetting a local connection');
      connNotCarried(route, 'refused');
      socket.resetAndDestroy();
      return;
    }
    waitingBy.set(listener, waiting + 1);
    session = await slot.wait(waitMs);
    waitingBy.set(listener, (waitingBy.get(listener) ?? 1) - 1);
  }
  if (session === null || socket.destroyed) {
    if (!socket.destroyed) logger.warn({ forward }, `not connected to the server within ${waitMs / 1000} s; resetting a local connection`);
    connNotCarried(route, 'dial_failed');
    socket.resetAndDestroy();
    return;
  }
  socket.off('error', ignore);
  if (takeOver?.(socket)) return;
  socket.on('error', ignore);
  let stream: Stream;
  try {
    stream = session.open({ type: StreamKind.LOCAL_FORWARD });
  } catch (error) {
    logger.warn({ forward, error: describeError(error) }, 'cannot open a stream; resetting a local connection');
    connNotCarried(route, 'dial_failed');
    socket.resetAndDestroy();
    return;
  }
  stream.write(encodeStreamHeader(localForwardHeader(spec, socket)));
  socket.off('error', ignore);
  const closed = logConnection(logger, { forward, peer: `${socket.remoteAddress}:${socket.remotePort}`, target: `${spec.targetHost}:${spec.targetPort}`, streamId: stream.id });
  bridge(socket, stream, (end) => {
    closed?.(end);
    if (end.error instanceof StreamResetError && end.error.remote && end.error.errorCode === ErrorCode.REFUSED_STREAM) {
      // The engine refuses at a limit without a word on the control stream: say it here.
      logger.warn({ forward, streamId: stream.id }, 'the server refused a -L connection (REFUSED_STREAM): it is at a limit such as its --max-streams, or its policy forbids the target');
    }
  }, route);
}

/**
 * The header of a stream the server opened, if its type is one of `types`
 * and the header arrives whole in time; otherwise the stream is reset,
 * the reason logged, and the result is `undefined`.
 */
export async function readServerStreamHeader(stream: Stream, types: readonly number[], timeoutMs: number, logger: TunnelLogger): Promise<unknown> {
  stream.on('error', () => {});
  if (!types.includes(stream.type)) {
    logger.warn({ streamType: stream.type }, 'the server opened a stream of a type it may not open; refusing');
    stream.reset(ErrorCode.REFUSED_STREAM);
    return undefined;
  }
  return readHeaderOrReset(stream, timeoutMs, logger, 'stream header from the server');
}

/**
 * The client's -R forwards as server streams see them, read when each
 * stream arrives: a forward removed since is unknown (its stream refused),
 * and a reload's --allow-target applies to the next reverse dynamic stream.
 */
export interface RemoteForwardLookup {
  /** The forward a stream header's `forward` id names, if the client has it now. */
  remoteSpec(id: number): ForwardSpec | undefined;
  /** What a reverse dynamic -R may reach from this side (empty: anything). */
  readonly allowTarget: readonly TargetPattern[];
  /** The PROXY header of -R forwards that name none. */
  readonly proxyProtocol?: ProxyProtocolVersion | undefined;
}

/** A -L stream's header: the target, and who connected where (for the server's --proxy-protocol). */
export function localForwardHeader(spec: ForwardSpec, socket: net.Socket): LocalForwardHeader {
  const peer = socketEnd(socket, 'remote');
  const dest = socketEnd(socket, 'local');
  return { host: spec.targetHost, port: spec.targetPort, ...(peer !== undefined ? { peer } : {}), ...(dest !== undefined ? { dest } : {}) };
}

/**
 * The PROXY header a -R forward's target gets first, or null for none.
 * Written to the target socket itself, not through the tunnel: it is not
 * part of the conn's bytes, so a resume never sends it again.
 */
export function remoteProxyHeader(spec: ForwardSpec, header: RemoteForwardHeader, fallback: ProxyProtocolVersion | undefined): Buffer | null {
  const version = proxyProtocolOf(spec, fallback);
  return version === undefined ? null : proxyHeaderFor(version, header.peer, header.dest);
}

/** Why a -R stream is refused when its forward id is not (or no longer) the client's. */
export const UNKNOWN_REMOTE_FORWARD = '-R stream for a forward this client did not request; refusing';

/** A stream the server opened for a connection to one of this client's -R listeners: read its header, dial the target, bridge. */
export async function serveRemoteStream(
  stream: Stream,
  forwards: RemoteForwardLookup,
  timings: { headerTimeoutMs: number; dialTimeoutMs: number },
  logger: TunnelLogger,
  stats: ClientStats,
): Promise<void> {
  const header = await readServerStreamHeader(stream, [StreamKind.REMOTE_FORWARD], timings.headerTimeoutMs, logger);
  if (header === undefined) return;
  const spec = isRemoteForwardHeader(header) ? forwards.remoteSpec(header.forward) : undefined;
  if (!isRemoteForwardHeader(header) || spec === undefined) {
    logger.warn({ forward: isRemoteForwardHeader(header) ? header.forward : undefined }, UNKNOWN_REMOTE_FORWARD);
    stream.reset(ErrorCode.REFUSED_STREAM);
    return;
  }
  const route = stats.forwardRoute('R', header.forward);
  if (spec.dynamic === true) {
    serveReverseDynamic(stream, header, spec, {
      allowTarget: forwards.allowTarget,
      timeoutMs: timings.dialTimeoutMs,
      dialTimes: stats.dialTimes.R,
      route,
      logger,
      carry: (socket, fields) => bridge(socket, stream, logConnection(logger, fields), route),
    });
    return;
  }
  const target = `${spec.targetHost}:${spec.targetPort}`;
  const fields = { forward: describeForward('-R', spec), peer: header.peer, target, streamId: stream.id };
  let onEnd: ((end: BridgeEnd) => void) | undefined;
  const proxyHeader = remoteProxyHeader(spec, header, forwards.proxyProtocol);
  dialAndBridge(stream, {
    host: spec.targetHost,
    port: spec.targetPort,
    timeoutMs: timings.dialTimeoutMs,
    dialTimes: stats.dialTimes.R,
    route,
    onConnected: (socket) => {
      if (proxyHeader) socket.write(proxyHeader);
      const closed = logConnection(logger, fields);
      if (closed) onEnd = closed;
    },
    onFailed: (error) => {
      connNotCarried(route, 'dial_failed');
      logger.warn({ peer: header.peer, forward: fields.forward }, `dialling ${target} failed: ${describeError(error)}`);
      logger.debug({ ...fields, end: `dial failed: ${describeError(error)}` }, 'connection closed');
    },
    onEnd: (end) => onEnd?.(end),
  });
}

/**
 * A reverse dynamic -R stream, on either data path: the target its header
 * names is checked against this side's --allow-target, dialled, and answered
 * with a dial reply; `carry` takes the socket once the reply went out (a
 * bridge, or a resumable conn adopted behind the reply). A header without a
 * target is a protocol error for that stream.
 */
export function serveReverseDynamic(
  stream: Stream,
  header: RemoteForwardHeader,
  spec: ForwardSpec,
  options: {
    allowTarget: readonly TargetPattern[];
    timeoutMs: number;
    dialTimes?: DialTimes;
    route: TrafficRoute;
    logger: TunnelLogger;
    carry(socket: net.Socket, fields: ConnectionFields, target: { host: string; port: number }): void;
  },
): void {
  const { logger, route } = options;
  if (header.host === undefined || header.port === undefined) {
    logger.warn({}, 'reverse dynamic -R stream without a target; resetting the stream');
    stream.reset(ErrorCode.PROTOCOL_ERROR);
    return;
  }
  const target = { host: header.host, port: header.port };
  const refusal = checkTarget(options.allowTarget, target.host, target.port, `${describeForward('-R', spec)}: this side's --allow-target`);
  const fields = { forward: describeForward('-R', spec), peer: header.peer, target: `${target.host}:${target.port}`, streamId: stream.id };
  dialAndReply(stream, {
    ...target,
    refusal,
    timeoutMs: options.timeoutMs,
    ...(options.dialTimes ? { dialTimes: options.dialTimes } : {}),
    refused: (reply) => {
      connNotCarried(route, reply.failure === 'policy' ? 'refused' : 'dial_failed');
      logger.info({ ...fields, reason: reply.failure }, `refused a reverse dynamic connection: ${reply.message}`);
    },
    carry: (socket) => options.carry(socket, fields, target),
  });
}
