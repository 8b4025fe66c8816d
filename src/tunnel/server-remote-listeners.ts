import net from 'node:net';
import { ErrorCode, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { bridge } from './bridge.js';
import { logConnection } from './connection-log.js';
import type { ListenMessage } from './control-messages.js';
import { awaitDialReply } from './dial-reply.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeListenError, type TunnelLogger } from './logger.js';
import { checkRemotePort } from './policy.js';
import { socketEnd } from './proxy-protocol.js';
import type { ConnTable } from './resume/conn-table.js';
import type { ResumableConn } from './resume/conn.js';
import type { ServerConnection } from './server-connection.js';
import type { ServerLimits } from './server-limits.js';
import { applyIdleTimeout, type ServerConnHeader } from './server-streams.js';
import { acceptSocks, type AcceptedSocks } from './socks/accept.js';
import { encodeStreamHeader, type RemoteForwardHeader } from './stream-header.js';
import type { UserRights } from './users.js';
import { connNotCarried, type ServerStats, type SessionTraffic, type TrafficRoute, type TrafficSnapshot } from './tunnel-stats.js';

/** Connections one -R listener lets wait for the client while its link is down; more are reset. */
export const MAX_WAITING_PER_REMOTE_LISTENER = 128;
/** How long such a connection waits. */
export const REMOTE_WAIT_MS = 10_000;

/** One -R listener as the server's `sessions()` shows it (SessionInfo.listeners). */
export type RemoteListenerInfo = { id: number; bindHost: string; requested: number; port: number | null; dynamic: boolean } & TrafficSnapshot;

/** What a session's -R listeners need from the session. */
export interface RemoteListenersDeps {
  /** The link carrying the session now; null while it is detached. */
  link(): ServerConnection | null;
  /** The session's logger: its lines carry the user. */
  logger: TunnelLogger;
  /** The user's rights as they are now (a reconfigure changes them). */
  rights(): UserRights;
  /** The server's limits and counters as they are now (a reconfigure changes the limits). */
  server: { readonly limits: ServerLimits; readonly stats: ServerStats };
  /** The session's counters; each listener's connections count under its forward id. */
  traffic: SessionTraffic;
  /** The session's conns kept across links; null when it does not resume. */
  table: ConnTable<ServerConnHeader> | null;
  /** A REMOTE_FORWARD stream on `link`, within the user's maxStreams; throws when at it (the refusal counted in `route`). */
  openForward(link: ServerConnection, route?: TrafficRoute): Stream;
}

/** -R listener of a session: the port the client asked for (0: any), and whether it said "listening" yet. */
interface RemoteListener {
  server: net.Server;
  bindHost: string;
  dynamic: boolean;
  /** The port asked for (0: any). */
  requested: number;
  /** The port bound; null while binding. */
  port: number | null;
}

/**
 * A tunnel session's -R listeners on the server: binds each one the client
 * asks for (within the user's rights), and carries the connections they
 * accept to the client on REMOTE_FORWARD streams. A reverse dynamic
 * listener does the SOCKS handshake here first. While the link is down, a
 * session that resumes lets connections wait for the client (bounded).
 * The session (server-session.ts) owns one and tells it what happens.
 */
export class RemoteListeners {
  readonly #deps: RemoteListenersDeps;
  readonly #logger: TunnelLogger;
  readonly #listeners = new Map<number, RemoteListener>();
  /** -R connections waiting while the link is down, per listener. */
  readonly #waiting = new Map<number, number>();
  /** SOCKS connections to reverse dynamic listeners closed for a bad or missing handshake (debug log). */
  #socksRefused = 0;
  /** The session drains: a reverse dynamic connection whose SOCKS handshake ends now is refused. */
  #draining = false;
  /** The session ended: a listener still binding is closed when bound. */
  #ended = false;

  constructor(deps: RemoteListenersDeps) {
    this.#deps = deps;
    this.#logger = deps.logger;
  }

  get size(): number {
    return this.#listeners.size;
  }

  list(): RemoteListenerInfo[] {
    return [...this.#listeners].map(([id, entry]) => ({
      id,
      bindHost: entry.bindHost,
      requested: entry.requested,
      port: entry.port,
      dynamic: entry.dynamic,
      ...this.#deps.traffic.remoteSnapshot(id),
    }));
  }

  /** The client asks for a -R listener: bound and answered (`listening`), or refused (`error`). */
  listen(link: ServerConnection, request: ListenMessage): void {
    const { id, bindHost, port } = request;
    const refuse = (code: string, message: string): void => {
      this.#logger.warn({ bindHost, port, code }, `refused -R: ${message}`);
      link.send({ type: 'error', id, code, message });
    };
    const held = this.#listeners.get(id);
    if (held) {
      // The same request again: its answer died with a link and the client resumed. Answer it again.
      const same = held.bindHost === bindHost && held.dynamic === (request.dynamic === true) && (held.requested === port || held.port === port);
      if (same && held.port !== null) return link.send({ type: 'listening', id, bindHost, port: held.port });
      if (same) return; // still binding: the answer comes when it is bound
      return refuse(TunnelErrorCode.PROTOCOL, `forward id ${id} is already in use`);
    }
    const rights = this.#deps.rights();
    if (this.#listeners.size >= rights.maxRemoteListeners) {
      this.#deps.server.stats.limitRefusals.max_remote_listeners++;
      return refuse(TunnelErrorCode.LIMIT, `this client already holds ${this.#listeners.size} -R listeners (its limit)`);
    }
    const refusal = checkRemotePort(rights.policy, port, rights.allowRemoteFrom);
    if (refusal) return refuse(TunnelErrorCode.POLICY, refusal);

    // noDelay, as OpenSSH sets on forwarded sockets: a reply written in pieces must not wait for an ACK (Nagle).
    const listener = net.createServer({ allowHalfOpen: true, noDelay: true });
    const entry: RemoteListener = { server: listener, bindHost, dynamic: request.dynamic === true, requested: port, port: null };
    // Held from now, not from when the bind completes: requests that arrive
    // together must all see it, or each would pass the limit.
    this.#listeners.set(id, entry);
    listener.on('connection', (socket) => (request.dynamic === true ? void this.#onReverseDynamic(id, socket) : this.#onRemoteConnection(id, socket)));
    listener.once('error', (error: NodeJS.ErrnoException) => {
      if (this.#listeners.get(id) !== entry) return; // closed meanwhile (a reconfigure said why)
      this.#listeners.delete(id);
      refuse(TunnelErrorCode.BIND, `cannot listen on ${bindHost}:${port}: ${describeListenError(error)}`);
    });
    listener.listen({ host: bindHost, port }, () => {
      if (this.#ended || this.#listeners.get(id) !== entry) {
        // The session ended, or drained its listeners, while this one was binding.
        listener.close();
        return;
      }
      listener.on('error', (error) => this.#logger.warn({ error: describeError(error) }, '-R listener failed'));
      const actual = (listener.address() as net.AddressInfo).port;
      entry.port = actual;
      this.#logger.info({ bindHost, port: actual }, '-R listening');
      link.send({ type: 'listening', id, bindHost, port: actual });
    });
  }

  /**
   * The client withdrew a -R forward (its config changed): the port is
   * free when this returns; connections the listener accepted go on until
   * they end. An id not held (refused, or a withdraw that raced the bind's
   * failure) is not an error: the client cannot know.
   */
  unlisten(id: number): void {
    const entry = this.#listeners.get(id);
    if (!entry) {
      this.#logger.debug({ forward: id }, 'unlisten for a -R forward this session does not hold; ignored');
      return;
    }
    this.#listeners.delete(id);
    this.#waiting.delete(id);
    // Still binding: the listen callback sees it gone, closes it and answers nothing.
    if (!entry.server.listening) return;
    const address = entry.server.address() as net.AddressInfo;
    entry.server.close();
    this.#logger.info({ bindHost: address.address, port: address.port }, '-R closed: the client withdrew it');
  }

  /**
   * The user's rights changed (the session has the new ones): a listener on
   * a port they no longer allow is closed (its open connections may finish)
   * and the client told which.
   */
  rightsChanged(): void {
    const rights = this.#deps.rights();
    for (const [id, entry] of [...this.#listeners]) {
      // The bound port, not the one asked for: "any port" (0) got one the new rules may exclude.
      const refusal = checkRemotePort(rights.policy, entry.port ?? entry.requested, rights.allowRemoteFrom);
      if (!refusal) continue;
      this.#listeners.delete(id);
      entry.server.close();
      const message = `${refusal}: the server closed this -R listener`;
      this.#logger.warn({ forward: id, port: entry.port ?? entry.requested, code: TunnelErrorCode.POLICY }, message);
      // Not answered yet: the client still waits for its listen request's reply.
      this.#deps.link()?.send(entry.port !== null ? { type: 'forward-closed', id, code: TunnelErrorCode.POLICY, message } : { type: 'error', id, code: TunnelErrorCode.POLICY, message });
    }
  }

  /** The session drains: no more accepts, and a SOCKS handshake still in progress is answered with a failure. Open connections go on. */
  drain(): void {
    this.#draining = true;
    this.#closeListeners();
  }

  /** The session ended: no more accepts, and a listener still binding is closed when bound. */
  end(): void {
    this.#ended = true;
    this.#closeListeners();
  }

  /** A link carries the session (again): connections that waited for one no longer count as waiting. */
  linkAttached(): void {
    this.#waiting.clear();
  }

  /**
   * Opens the REMOTE_FORWARD stream of a -R conn (a session that resumes)
   * that has none: one just accepted, or one the client never saw (a
   * resume's `reopen`). If no stream can be opened now, the conn waits for
   * the next link.
   */
  openStream(link: ServerConnection, conn: ResumableConn, header: RemoteForwardHeader): void {
    let stream: Stream;
    try {
      stream = this.#deps.openForward(link);
    } catch (error) {
      this.#logger.warn({ error: describeError(error) }, 'cannot open a -R stream; the connection waits for the next link');
      return;
    }
    stream.write(encodeStreamHeader({ ...header, conn: conn.id }));
    this.#deps.table!.attach(conn, stream, { bytes: 0, fin: false });
  }

  /**
   * Stops the -R listeners accepting; their ports are free when this
   * returns (close() releases the socket at once). Not close()'s callback:
   * that waits for every connection the listener accepted.
   */
  #closeListeners(): void {
    for (const { server } of this.#listeners.values()) server.close();
    this.#listeners.clear();
  }

  #onRemoteConnection(forward: number, socket: net.Socket): void {
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const local = socket.address() as net.AddressInfo;
    const dest = socketEnd(socket, 'local');
    const header: RemoteForwardHeader = { forward, peer, ...(dest !== undefined ? { dest } : {}) };
    const fields = { forward: `-R ${local.address}:${local.port}`, peer, target: `the client's forward ${forward}` };
    const link = this.#deps.link();
    const route = this.#deps.traffic.remoteRoute(forward);
    if (this.#deps.table) {
      if (!link) {
        // The link is down: the connection waits for the client's resume (it is reopened then), within bounds.
        const waiting = this.#waiting.get(forward) ?? 0;
        if (waiting >= MAX_WAITING_PER_REMOTE_LISTENER) {
          this.#logger.warn({ ...fields, waiting }, 'the client is away and too many connections wait already; resetting one');
          this.#deps.server.stats.limitRefusals.max_waiting++;
          connNotCarried(route, 'refused');
          socket.resetAndDestroy();
          return;
        }
        this.#waiting.set(forward, waiting + 1);
      }
      this.#applyIdleTimeout(socket);
      const conn = this.#deps.table.open(socket, { header, onEnd: logConnection(this.#logger, fields), route });
      if (link) this.openStream(link, conn, header);
      else this.#expireIfUnclaimed(conn, forward);
      return;
    }
    if (!link) {
      connNotCarried(route, 'dial_failed');
      socket.resetAndDestroy();
      return;
    }
    let stream: Stream;
    try {
      stream = this.#deps.openForward(link, route);
    } catch (error) {
      this.#logger.warn({ error: describeError(error) }, 'cannot open a -R stream; resetting the connection');
      socket.resetAndDestroy();
      return;
    }
    this.#applyIdleTimeout(socket);
    stream.write(encodeStreamHeader(header));
    // bridge() handles both sides' errors from here; no listener of our own is needed.
    bridge(socket, stream, logConnection(this.#logger, { ...fields, streamId: stream.id }), route);
  }

  /**
   * A connection to a reverse dynamic -R listener: the SOCKS handshake
   * here, then a REMOTE_FORWARD stream whose header names the requested
   * target; the client checks its --allow-target, dials, and answers with
   * a dial reply before any forwarded byte. Only then does the SOCKS
   * client hear success. With resumption the conn id is reserved for the
   * header and the conn adopted after the reply, as for -D.
   */
  async #onReverseDynamic(forward: number, socket: net.Socket): Promise<void> {
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const local = socket.address() as net.AddressInfo;
    const fields = { forward: `-R ${local.address}:${local.port} (SOCKS)`, peer, target: '?' };
    let request: AcceptedSocks;
    try {
      request = await acceptSocks(socket, this.#deps.server.limits.headerTimeoutMs);
    } catch (error) {
      this.#socksRefused++;
      this.#logger.debug({ ...fields, error: describeError(error), socksRefused: this.#socksRefused }, 'closed a SOCKS connection');
      return;
    }
    fields.target = `${request.host}:${request.port}`;
    const link = this.#deps.link();
    const route = this.#deps.traffic.remoteRoute(forward);
    if (!link || this.#draining) {
      connNotCarried(route, 'dial_failed');
      request.answer('failed');
      return;
    }
    const table = this.#deps.table;
    const id = table?.reserveId();
    const header: RemoteForwardHeader = { forward, peer, host: request.host, port: request.port };
    let stream: Stream;
    try {
      stream = this.#deps.openForward(link, route);
    } catch (error) {
      this.#logger.warn({ error: describeError(error) }, 'cannot open a -R stream; refusing a SOCKS connection');
      request.answer('failed');
      return;
    }
    stream.on('error', () => {});
    stream.write(encodeStreamHeader(id === undefined ? header : { ...header, conn: id }));
    const outcome = await awaitDialReply(stream, this.#deps.server.limits.dialTimeoutMs + this.#deps.server.limits.headerTimeoutMs);
    if (!outcome.ok) {
      connNotCarried(route, outcome.failure === 'policy' ? 'refused' : 'dial_failed');
      request.answer(outcome.failure);
      this.#logger.info({ ...fields, reason: outcome.failure }, `SOCKS connection refused by the client: ${outcome.message}`);
      return;
    }
    if (socket.destroyed) {
      connNotCarried(route, 'dial_failed');
      stream.reset(ErrorCode.CANCEL);
      return;
    }
    request.answer(null);
    this.#applyIdleTimeout(socket);
    const closed = logConnection(this.#logger, { ...fields, streamId: stream.id });
    if (table && id !== undefined && !link.session.isClosed) {
      const conn = table.adopt(id, socket, { header, onEnd: closed, route });
      table.attach(conn, stream, { bytes: 0, fin: false });
      return;
    }
    bridge(socket, stream, closed, route);
    socket.resume();
  }

  /** A -R connection that came while the link was down: reset if no resume claims it in time. */
  #expireIfUnclaimed(conn: ResumableConn, forward: number): void {
    const timer = setTimeout(() => {
      this.#waiting.set(forward, Math.max(0, (this.#waiting.get(forward) ?? 1) - 1));
      if (!conn.attached && !conn.done) conn.abort(new TunnelError(TunnelErrorCode.SESSION_LOST, `the client did not come back within ${REMOTE_WAIT_MS / 1000} s`));
    }, REMOTE_WAIT_MS);
    timer.unref();
  }

  #applyIdleTimeout(socket: net.Socket): void {
    applyIdleTimeout(socket, this.#deps.server.limits.idleTimeoutMs, this.#logger);
  }
}
