/**
 * The forward streams a client opens on the server: -L (LOCAL_FORWARD) and
 * -D / -W (DYNAMIC). Each reads its stream header, checks the target
 * against the user's rights, dials it and carries the connection: bridged,
 * or as a resumable conn when the session resumes. The session
 * (server-session.ts) counts the streams and hands each one here.
 */
import type net from 'node:net';
import { ErrorCode, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { abortSocket, bridge } from './bridge.js';
import { logConnection } from './connection-log.js';
import { dialAndBridge, dialTarget } from './dial.js';
import { dialAndReply } from './dial-reply.js';
import { TunnelErrorCode } from './errors.js';
import type { TunnelLogger } from './logger.js';
import { checkLocalTarget } from './policy.js';
import { proxyHeaderFor, type ProxyProtocolVersion } from './proxy-protocol.js';
import type { ConnTable } from './resume/conn-table.js';
import type { ServerConnection } from './server-connection.js';
import type { ServerLimits } from './server-limits.js';
import { isLocalForwardHeader, readHeaderOrReset, type LocalForwardHeader, type RemoteForwardHeader } from './stream-header.js';
import type { UserRights } from './users.js';
import { connNotCarried, type ServerStats, type SessionTraffic } from './tunnel-stats.js';

/** The header a server-side conn was opened with: the client's -L or -D/-W stream, or the server's -R stream. */
export type ServerConnHeader = LocalForwardHeader | RemoteForwardHeader;

/** What serving a client's forward streams needs from its session. */
export interface ServerStreamDeps {
  /** The link carrying the session now; null while it is detached. */
  link(): ServerConnection | null;
  /** The session's logger: its lines carry the user. */
  logger: TunnelLogger;
  /** The user's rights as they are now (a reconfigure changes them). */
  rights(): UserRights;
  /** The server's limits, counters and -L PROXY header as they are now (a reconfigure changes them). */
  server: { readonly limits: ServerLimits; readonly stats: ServerStats; readonly proxyProtocol?: ProxyProtocolVersion | undefined };
  /** The session's counters. */
  traffic: SessionTraffic;
  /** The session's conns kept across links; null when it does not resume. */
  table: ConnTable<ServerConnHeader> | null;
}

// ---- -L ----

export async function serveLocalForward(stream: Stream, deps: ServerStreamDeps): Promise<void> {
  const { logger, server } = deps;
  const header = await readHeaderOrReset(stream, server.limits.headerTimeoutMs, logger, '-L stream header');
  if (header === undefined) return;
  if (!isLocalForwardHeader(header) || (deps.table !== null) !== (header.conn !== undefined)) {
    logger.warn({}, 'malformed -L stream header; resetting the stream');
    stream.reset(ErrorCode.PROTOCOL_ERROR);
    return;
  }
  const { host, port } = header;
  const table = deps.table;
  if (table && header.conn !== undefined && !table.sawPeerId(header.conn)) {
    logger.warn({ conn: header.conn }, '-L stream for a conn id that is not new; resetting the stream');
    stream.reset(ErrorCode.PROTOCOL_ERROR);
    return;
  }
  const link = deps.link();
  const route = deps.traffic.route('L');
  const dialTimes = server.stats.dialTimes.L;
  const rights = deps.rights();
  const refusal = checkLocalTarget(rights.policy, host, port, rights.allowLocalFrom);
  if (refusal) {
    connNotCarried(route, 'refused');
    logger.warn({ target: `${host}:${port}` }, `refused -L: ${refusal}`);
    link?.send({ type: 'forward-failed', streamId: stream.id, code: TunnelErrorCode.POLICY, message: refusal });
    stream.reset(ErrorCode.REFUSED_STREAM);
    return;
  }
  const fields = { forward: '-L', peer: link?.remote ?? '?', target: `${host}:${port}`, streamId: stream.id };
  const onFailed = (error: Error): void => {
    connNotCarried(route, 'dial_failed');
    const message = `dialling ${host}:${port} failed: ${describeError(error)}`;
    logger.warn({ target: `${host}:${port}`, streamId: stream.id }, message);
    logger.debug({ ...fields, end: `dial failed: ${describeError(error)}` }, 'connection closed');
    deps.link()?.send({ type: 'forward-failed', streamId: stream.id, code: TunnelErrorCode.DIAL, message });
  };
  // Written to the target socket, outside the conn's bytes: a resume never repeats it.
  const version = server.proxyProtocol;
  const proxyHeader = version === undefined ? null : proxyHeaderFor(version, header.peer, header.dest);
  const prepare = (socket: net.Socket): void => {
    applyIdleTimeout(socket, server.limits.idleTimeoutMs, logger);
    if (proxyHeader) socket.write(proxyHeader);
  };
  const dial = { host, port, timeoutMs: server.limits.dialTimeoutMs, dialTimes, onFailed };
  if (table && header.conn !== undefined) {
    const id = header.conn;
    dialTarget(stream, {
      ...dial,
      onConnected: (socket) => {
        prepare(socket);
        const conn = table.adopt(id, socket, { header, onEnd: logConnection(logger, fields), route });
        table.attach(conn, stream, { bytes: 0, fin: false });
      },
    });
    return;
  }
  let closed: ReturnType<typeof logConnection>;
  dialAndBridge(stream, {
    ...dial,
    route,
    onConnected: (socket) => {
      prepare(socket);
      closed = logConnection(logger, fields);
    },
    onEnd: (end) => closed?.(end),
  });
}

// ---- -D and -W ----

/**
 * A DYNAMIC stream (a SOCKS connection or -W on the client): like -L, but
 * the client waits for the outcome, so the server answers with a dial
 * reply before any forwarded byte, and only then carries data. With
 * resumption the conn is adopted after the reply: its byte accounting
 * starts behind the header and the reply on both sides.
 */
export async function serveDynamic(stream: Stream, deps: ServerStreamDeps): Promise<void> {
  const { logger, server } = deps;
  stream.on('error', () => {});
  const header = await readHeaderOrReset(stream, server.limits.headerTimeoutMs, logger, 'dynamic stream header');
  if (header === undefined) return;
  const table = deps.table;
  if (!isLocalForwardHeader(header) || (table !== null) !== (header.conn !== undefined) || (table && header.conn !== undefined && !table.sawPeerId(header.conn))) {
    logger.warn({}, 'malformed dynamic stream header; resetting the stream');
    stream.reset(ErrorCode.PROTOCOL_ERROR);
    return;
  }
  const { host, port, conn: id } = header;
  const target = `${host}:${port}`;
  const fields = { forward: '-D', peer: deps.link()?.remote ?? '?', target, streamId: stream.id };
  const route = deps.traffic.route('D');
  const rights = deps.rights();
  dialAndReply(stream, {
    host,
    port,
    timeoutMs: server.limits.dialTimeoutMs,
    dialTimes: server.stats.dialTimes.D,
    refusal: checkLocalTarget(rights.policy, host, port, rights.allowLocalFrom),
    refused: (reply) => {
      connNotCarried(route, reply.failure === 'policy' ? 'refused' : 'dial_failed');
      logger.warn({ target, streamId: stream.id, reason: reply.failure }, `refused a dynamic connection: ${reply.message}`);
    },
    carry: (socket) => {
      applyIdleTimeout(socket, server.limits.idleTimeoutMs, logger);
      if (table && id !== undefined) {
        const conn = table.adopt(id, socket, { header, onEnd: logConnection(logger, fields), route });
        table.attach(conn, stream, { bytes: 0, fin: false });
        return;
      }
      bridge(socket, stream, logConnection(logger, fields), route);
    },
  });
}

/** Closes a forwarded connection (any kind, -R too) after `idleMs` without traffic; 0: never. */
export function applyIdleTimeout(socket: net.Socket, idleMs: number, logger: TunnelLogger): void {
  if (idleMs <= 0) return;
  socket.setTimeout(idleMs, () => {
    logger.info({ idleMs }, 'closing an idle forwarded connection');
    abortSocket(socket);
  });
}
