import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { serverTlsOptions } from '../tls/index.js';
import { WebSocketListener, type WebSocketConnection } from '../transport/index.js';
import { waitForDrain } from './drain.js';
import { describeError } from '../util/errors.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeListenError, type TunnelLogger } from './logger.js';
import { PROTOCOL_VERSION, type HelloMessage } from './control-messages.js';
import { ServerConnection } from './server-connection.js';
import { ServerSession, type SessionContext, type SessionInfo } from './server-session.js';
import { AuthThrottle } from './auth-throttle.js';
import type { ServerLimits } from './server-limits.js';
import { resolveServerOptions, type ResolvedServerOptions, type TunnelServerOptions } from './server-options.js';
import { compareServerOptions, type ReconfigureResult } from './server-reconfigure.js';
import { userRights, UserTable, type TunnelUser } from './users.js';
import { ServerStats, type ServerStatsSnapshot } from './tunnel-stats.js';

/** Sessions are the user's and the client's: another user's client id names another session. */
const sessionKey = (user: string, clientId: string): string => `${user}\n${clientId}`;

/** `muxtun serve`: accepts TLS connections from clients, each one muxado session. */
export class TunnelServer {
  /** Replaced whole by `reconfigure`, but for what needs a restart (addresses, TLS identity). */
  #options: ResolvedServerOptions;
  #users: UserTable;
  readonly #logger: TunnelLogger;
  readonly #tcp: net.Server;
  readonly #tls: tls.Server;
  /** For TLS over WebSockets, which the TLS server cannot be handed (their TLS sockets would not know the peer). */
  readonly #secureContext: tls.SecureContext;
  readonly #webSocket: WebSocketListener | null;
  #webSocketAddress: AddressInfo | null = null;
  /** Connections not authenticated yet, by remote address:port: the way to uncount each. */
  readonly #unauthenticatedBy = new Map<string, () => void>();
  /** Every TLS connection, authenticated or not. */
  readonly #links = new Set<ServerConnection>();
  /** The tunnel session each authenticated link carries. */
  readonly #sessionOf = new Map<ServerConnection, ServerSession>();
  /** Tunnel sessions, attached or kept for a resume, by user and client id (sessionKey). */
  readonly #byKey = new Map<string, ServerSession>();
  /** Sessions that expired recently, with the grace they had (ms). */
  readonly #expired = new Map<string, number>();
  /** Sessions the operator closed recently, with what their client is told: a late resume hears it too. */
  readonly #closedByOperator = new Map<string, { key: string; message: string }>();
  readonly #throttle = new AuthThrottle();
  readonly #stats = new ServerStats();
  #unauthenticated = 0;
  #stopping = false;

  constructor(options: TunnelServerOptions) {
    this.#options = resolveServerOptions(options);
    this.#users = new UserTable(this.#options.users);
    this.#logger = this.#options.logger;
    this.#tls = tls.createServer({
      ...serverTlsOptions(this.#options.tls),
      handshakeTimeout: this.#limits.handshakeTimeoutMs,
    });
    this.#tls.on('secureConnection', (socket) => this.#onConnection(socket));
    this.#tls.on('tlsClientError', (error, socket) => {
      this.#logger.info({ remote: `${socket.remoteAddress}:${socket.remotePort}`, error: describeError(error) }, 'TLS handshake failed');
      // Node leaves the socket open when someone listens for this event.
      socket.destroy();
    });
    // A plain TCP listener hands connections to the TLS server (Node's documented
    // way to inject them), so that a connection counts against
    // maxUnauthenticated from accept on: a flood of TLS handshakes that never
    // finish is the cheapest way to tie the server up.
    this.#tcp = net.createServer((socket) => this.#onTcpConnection(socket));
    this.#secureContext = tls.createSecureContext(serverTlsOptions(this.#options.tls));
    const ws = this.#options.webSocket;
    this.#webSocket = ws
      ? new WebSocketListener({
          ...ws,
          requestTimeoutMs: this.#limits.handshakeTimeoutMs,
          onConnection: (connection) => this.#onWebSocket(connection),
          onRefused: (info) => this.#logger.debug(info, 'WebSocket listener: refused a request'),
        })
      : null;
  }

  /**
   * Starts listening (the TLS port unless `tlsListen` is false, and the
   * WebSocket listener when configured); resolves with the TLS port's bound
   * address (the WebSocket one when it is alone), rejects if a port cannot be bound.
   */
  async listen(): Promise<AddressInfo> {
    let address: AddressInfo | null = null;
    if (this.#options.tlsListen) address = await this.#listenTcp();
    if (this.#webSocket) {
      const ws = this.#options.webSocket!;
      try {
        this.#webSocketAddress = await this.#webSocket.listen();
      } catch (error) {
        if (address) await new Promise((resolve) => this.#tcp.close(resolve));
        throw new TunnelError(TunnelErrorCode.BIND, `cannot listen for WebSockets on ${ws.host}:${ws.port}: ${describeListenError(error as Error)}`, { cause: error });
      }
    }
    return address ?? this.#webSocketAddress!;
  }

  /** Where `--ws-listen` is bound, once listening; null without it. */
  get webSocketAddress(): AddressInfo | null {
    return this.#webSocketAddress;
  }

  #listenTcp(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void =>
        reject(
          new TunnelError(TunnelErrorCode.BIND, `cannot listen on ${this.#options.host}:${this.#options.port}: ${describeListenError(error)}`, {
            cause: error,
          }),
        );
      this.#tcp.once('error', onError);
      this.#tcp.listen({ host: this.#options.host, port: this.#options.port }, () => {
        this.#tcp.off('error', onError);
        this.#tcp.on('error', (error) => this.#logger.error({ error: describeError(error) }, 'server socket failed'));
        resolve(this.#tcp.address() as AddressInfo);
      });
    });
  }

  get #limits(): ServerLimits {
    return this.#options.limits;
  }

  /** Client sessions that authenticated and are still open (or kept for a resume). */
  get sessionCount(): number {
    return this.#byKey.size;
  }

  /** Every session, attached or kept for a resume: whose it is, from where, since when, what it holds. */
  sessions(): SessionInfo[] {
    return [...this.#byKey.values()].map((session) => session.info());
  }

  /**
   * Ends one client's session for good (`muxtun session close`): the client
   * is told `reason` with ERR_MUXTUN_SESSION_CLOSED, which `connect` takes
   * as final (it exits, it does not reconnect); the session's -R listeners
   * and connections end and it is not kept for a resume. A detached session
   * ends at once and its client hears the reason when it tries to resume.
   * Returns the session as it was, or undefined for an unknown id.
   */
  closeSession(sessionId: string, reason: string): SessionInfo | undefined {
    const session = [...this.#byKey.values()].find((candidate) => candidate.sessionId === sessionId);
    if (!session) return undefined;
    const info = session.info();
    const message = `the server closed this session: ${reason}`;
    remember(this.#closedByOperator, sessionId, { key: sessionKey(session.user, session.clientId), message });
    session.closeByOperator(message);
    return info;
  }

  /**
   * Counters since start for monitoring (`/metrics`): connections and bytes
   * by user and kind, dial times, auth failures, resumes, limit refusals.
   * Live sessions (their users, RTTs, bytes) are in `sessions()`. Cheap: no I/O.
   */
  trafficStats(): ServerStatsSnapshot {
    return this.#stats.snapshot();
  }

  /**
   * Applies new options to the running server without dropping anyone.
   * They are validated whole first: invalid ones throw
   * `ERR_MUXTUN_INVALID_ARGUMENT` and change nothing. Users, token, policy
   * and limits apply at once (engine settings such as heartbeats, and
   * `limits.maxStreams` above what it was, to connections made after);
   * what needs a restart (listening addresses, TLS identity, the handshake
   * timeout) is kept as it was and listed in `restartNeeded`.
   *
   * Then what the new options no longer allow ends: a session whose token
   * (or user) is gone is told ERR_MUXTUN_ACCESS_REVOKED and closed, not kept
   * for a resume; a -R listener on a port its user may no longer bind is
   * closed and the client told (`forward-closed`). Everything else, its
   * streams and connections, is left as it is.
   */
  reconfigure(options: TunnelServerOptions): ReconfigureResult {
    const next = resolveServerOptions(options);
    const result = compareServerOptions(this.#options, next);
    const current = this.#options;
    this.#options = {
      ...next,
      host: current.host,
      port: current.port,
      tlsListen: current.tlsListen,
      webSocket: current.webSocket,
      tls: current.tls,
      logger: current.logger,
      limits: { ...next.limits, handshakeTimeoutMs: current.limits.handshakeTimeoutMs },
    };
    this.#users = new UserTable(this.#options.users);
    for (const session of [...this.#byKey.values()]) {
      const owner = this.#users.ownerOf(session.tokenHash);
      if (owner === undefined || owner.name !== session.user) {
        const why = this.#users.byName(session.user) === undefined ? `user ${session.user} was removed` : `the token this session authenticated with was removed from user ${session.user}`;
        session.revoke(`access revoked: ${why}`);
      } else {
        session.setRights(this.#rightsOf(owner));
      }
    }
    if (result.applied.length > 0 || result.restartNeeded.length > 0) this.#logger.info({ ...result, users: this.#users.size }, 'reconfigured');
    return result;
  }

  /** Counts for monitoring and tests. */
  stats(): { sessions: number; detachedSessions: number; unauthenticated: number; streams: number; remoteListeners: number; conns: number; replayBytes: number } {
    let streams = 0;
    let remoteListeners = 0;
    let detachedSessions = 0;
    let conns = 0;
    let replayBytes = 0;
    for (const link of this.#links) {
      // The control stream is not a forward.
      streams += Math.max(0, link.session.openStreams - (link.isAuthenticated ? 1 : 0));
    }
    for (const session of this.#byKey.values()) {
      remoteListeners += session.remoteListeners;
      conns += session.conns;
      replayBytes += session.replayBytes;
      if (session.isDetached) detachedSessions++;
    }
    return { sessions: this.#byKey.size, detachedSessions, unauthenticated: this.#unauthenticated, streams, remoteListeners, conns, replayBytes };
  }

  /**
   * Graceful stop: stop accepting, send GOAWAY, close -R listeners, let open
   * streams finish for up to `drainMs`, then close every session.
   */
  async stop(drainMs = 5_000): Promise<{ drained: boolean }> {
    if (this.#stopping) return { drained: true };
    this.#stopping = true;
    const closed = Promise.all([
      this.#tcp.listening ? new Promise<void>((resolve) => this.#tcp.close(() => resolve())) : undefined,
      this.#webSocket?.close(),
    ]);
    const sessions = [...this.#byKey.values()];
    for (const session of sessions) session.drainStart('server shutting down');
    const links = [...this.#links];
    const drained = await waitForDrain(
      links.map((link) => ({ session: link.session, keep: link.control ? [link.control.stream] : [] })),
      drainMs,
    );
    for (const session of sessions) session.end('server shutting down');
    for (const link of links) link.close('server shutting down');
    await Promise.all(links.map((link) => link.session.closed));
    await closed;
    return { drained };
  }

  #onTcpConnection(socket: net.Socket): void {
    socket.on('error', () => {});
    if (!this.#admit(`${socket.remoteAddress}:${socket.remotePort}`, socket)) return;
    this.#tls.emit('connection', socket);
  }

  /**
   * A WebSocket at --ws-path: the same TLS, run by hand over the stream (the
   * TLS server's sockets would not know the peer), counted like a TCP
   * connection from the upgrade on. The peer is the HTTP one: behind a
   * reverse proxy, the proxy's address.
   */
  #onWebSocket(connection: WebSocketConnection): void {
    const { stream, remoteAddress, remotePort } = connection;
    const remote = `${remoteAddress}:${remotePort}`;
    stream.on('error', () => {});
    if (!this.#admit(remote, stream)) return;
    const socket = new tls.TLSSocket(stream, { isServer: true, secureContext: this.#secureContext });
    const timer = setTimeout(() => socket.destroy(), this.#limits.handshakeTimeoutMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.on('error', (error) => {
      if (socket.listenerCount('secure') > 0) this.#logger.info({ remote, via: 'websocket', error: describeError(error) }, 'TLS handshake failed');
      socket.destroy();
    });
    // 'secure' is what the TLS server itself waits for on the sockets it makes.
    socket.once('secure', () => {
      clearTimeout(timer);
      this.#onConnection(socket, { address: remoteAddress, port: remotePort });
    });
  }

  /** Counts a new connection against maxUnauthenticated until it authenticates or closes; false (and destroyed) when over the limit or stopping. */
  #admit(remote: string, socket: net.Socket | Duplex): boolean {
    if (this.#stopping) {
      socket.destroy();
      return false;
    }
    if (this.#unauthenticated >= this.#limits.maxUnauthenticated) {
      this.#stats.limitRefusals.max_unauthenticated++;
      this.#logger.warn({ remote, limit: this.#limits.maxUnauthenticated }, 'too many unauthenticated connections; dropping one');
      socket.destroy();
      return false;
    }
    this.#unauthenticated++;
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      this.#unauthenticated--;
      if (this.#unauthenticatedBy.get(remote) === uncount) this.#unauthenticatedBy.delete(remote);
    };
    this.#unauthenticatedBy.set(remote, uncount);
    socket.once('close', uncount);
    return true;
  }

  #onConnection(socket: tls.TLSSocket, peer?: { address: string; port: number }): void {
    const remote = peer ? `${peer.address}:${peer.port}` : `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('error', () => {});
    // The TLS socket runs on the TCP connection counted at accept: same peer address.
    const uncount = this.#unauthenticatedBy.get(remote) ?? ((): void => {});
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    const link = new ServerConnection(
      {
        limits: this.#limits,
        streamCap: Math.max(this.#limits.maxStreams, ...this.#options.users.map((u) => u.maxStreams ?? 0)),
        session: this.#options.session,
        logger: this.#logger,
        hello: (from, hello) => this.#onHello(from, hello, uncount),
        ended: (from, end) => {
          uncount();
          this.#links.delete(from);
          this.#sessionOf.get(from)?.linkEnded(from, end);
          this.#sessionOf.delete(from);
        },
      },
      socket,
      peer,
    );
    this.#links.add(link);
    link.logger.debug({}, 'TLS connection accepted');
  }

  /** Authenticates a hello, then starts a session for it, or resumes the one it names. */
  async #onHello(link: ServerConnection, hello: HelloMessage, uncount: () => void): Promise<void> {
    if (hello.version !== PROTOCOL_VERSION) {
      return link.refuse(TunnelErrorCode.VERSION, `this server speaks tunnel protocol version ${PROTOCOL_VERSION}, the client ${hello.version}`);
    }
    link.helloInTime();
    const delay = this.#throttle.delayFor(link.remoteAddress);
    if (delay > 0) {
      link.logger.debug({ delayMs: delay }, 'recent failed authentications from this address: answering later');
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (link.isClosing || link.session.isClosed) return;
    }
    const found = this.#users.authenticate(hello.token);
    if (found === null) {
      this.#stats.authFailures++;
      this.#throttle.failed(link.remoteAddress);
      link.logger.warn({}, 'authentication failed: wrong token');
      return link.refuse(TunnelErrorCode.AUTH, 'authentication failed: the token is not valid for this server');
    }
    const { user, tokenHash } = found;
    link.authenticatedAs(user.name);
    const key = sessionKey(user.name, hello.clientId);
    if (hello.resumeSession) return this.#onResume(link, key, hello.resumeSession, uncount);
    this.#throttle.succeeded(link.remoteAddress);
    const previous = this.#byKey.get(key);
    if (previous) {
      // The client came back with a fresh session before we noticed its old
      // one died (or without resuming it): free its -R ports for the new one.
      previous.end('replaced by a new session of the same client');
      await previous.link?.session.closed;
    } else if (this.#byKey.size >= this.#limits.maxSessions) {
      this.#stats.limitRefusals.max_sessions++;
      return link.refuse(TunnelErrorCode.LIMIT, `the server is full: it holds its limit of ${this.#limits.maxSessions} client sessions`);
    } else if (user.maxSessions !== undefined && this.#sessionsOf(user.name) >= user.maxSessions) {
      this.#stats.limitRefusals.max_sessions++;
      return link.refuse(TunnelErrorCode.LIMIT, `user ${user.name} holds its limit of ${user.maxSessions} sessions`);
    }
    // A reconfigure while the old session closed may have taken the token away.
    if (link.isClosing || link.session.isClosed || this.#users.ownerOf(tokenHash) !== user) {
      if (!link.isClosing) link.refuse(TunnelErrorCode.AUTH, 'authentication failed: the token is not valid for this server');
      return;
    }
    uncount();
    const session = new ServerSession(this.#sessionContext(), { user: user.name, tokenHash, rights: this.#rightsOf(user) }, hello.clientId, hello.resume === true);
    this.#byKey.set(key, session);
    this.#sessionOf.set(link, session);
    link.logger.info({ sessionId: session.sessionId, clientId: hello.clientId }, 'client authenticated');
    session.start(link);
  }

  #rightsOf(user: TunnelUser): ReturnType<typeof userRights> {
    return userRights(user, this.#options.policy, this.#limits);
  }

  #sessionsOf(user: string): number {
    let count = 0;
    for (const session of this.#byKey.values()) if (session.user === user) count++;
    return count;
  }

  #onResume(link: ServerConnection, key: string, wanted: { sessionId: string; secret: string }, uncount: () => void): void {
    // Looked up under the user who authenticated: another user's session is "unknown" to this one.
    const session = this.#byKey.get(key);
    if (!session || session.sessionId !== wanted.sessionId || !session.secretMatches(wanted.secret)) {
      const closed = this.#closedByOperator.get(wanted.sessionId);
      // Only to its own client (same user and client id): nobody else learns why it ended.
      if (closed !== undefined && closed.key === key) return link.refuse(TunnelErrorCode.SESSION_CLOSED, closed.message);
      const expired = this.#expired.get(wanted.sessionId);
      let why: string;
      if (session && session.sessionId === wanted.sessionId) {
        // The session exists: this is not its client.
        this.#stats.authFailures++;
        this.#throttle.failed(link.remoteAddress);
        why = 'the resume secret does not match';
      } else if (expired !== undefined) {
        why = `expired after ${expired / 1000} s`;
      } else {
        why = 'unknown session: the server restarted, or the session ended';
      }
      return link.refuse(TunnelErrorCode.RESUME_REFUSED, why);
    }
    this.#throttle.succeeded(link.remoteAddress);
    this.#stats.resumes++;
    uncount();
    const old = session.link;
    if (old) this.#sessionOf.delete(old);
    this.#sessionOf.set(link, session);
    link.logger.info({ sessionId: session.sessionId }, 'client resumes its session');
    session.resume(link);
  }

  #sessionContext(): SessionContext {
    const server = this;
    return {
      get limits() {
        return server.#limits;
      },
      get proxyProtocol() {
        return server.#options.proxyProtocol;
      },
      logger: this.#logger,
      resumeGraceMs: this.#options.resumeGraceMs,
      stats: this.#stats,
      ended: (session) => {
        const key = sessionKey(session.user, session.clientId);
        if (this.#byKey.get(key) === session) this.#byKey.delete(key);
        if (session.expired) remember(this.#expired, session.sessionId, this.#options.resumeGraceMs);
      },
    };
  }
}

/** Remembers why recent sessions ended, so a late resume hears it. Bounded: the oldest goes first. */
function remember<V>(map: Map<string, V>, sessionId: string, value: V): void {
  map.set(sessionId, value);
  if (map.size > 1_000) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}
