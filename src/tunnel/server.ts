import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { serverTlsOptions } from '../tls/index.js';
import { WebSocketListener, type WebSocketConnection } from '../transport/index.js';
import { waitForDrain } from './drain.js';
import { describeError } from '../util/errors.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeListenError, type TunnelLogger } from './logger.js';
import { tokensEqual } from './auth.js';
import { PROTOCOL_VERSION, type HelloMessage } from './control-messages.js';
import { ServerConnection } from './server-connection.js';
import { ServerSession, type SessionContext } from './server-session.js';
import { AuthThrottle } from './auth-throttle.js';
import type { ServerLimits } from './server-limits.js';
import { resolveServerOptions, type ResolvedServerOptions, type TunnelServerOptions } from './server-options.js';

/** `muxtun serve`: accepts TLS connections from clients, each one muxado session. */
export class TunnelServer {
  readonly #options: ResolvedServerOptions;
  readonly #limits: ServerLimits;
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
  /** Tunnel sessions, attached or kept for a resume, by the client's id. */
  readonly #byClientId = new Map<string, ServerSession>();
  /** Sessions that expired recently, with the grace they had (ms). */
  readonly #expired = new Map<string, number>();
  readonly #throttle = new AuthThrottle();
  #unauthenticated = 0;
  #stopping = false;

  constructor(options: TunnelServerOptions) {
    this.#options = resolveServerOptions(options);
    this.#limits = this.#options.limits;
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

  /** Client sessions that authenticated and are still open (or kept for a resume). */
  get sessionCount(): number {
    return this.#byClientId.size;
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
    for (const session of this.#byClientId.values()) {
      remoteListeners += session.remoteListeners;
      conns += session.conns;
      replayBytes += session.replayBytes;
      if (session.isDetached) detachedSessions++;
    }
    return { sessions: this.#byClientId.size, detachedSessions, unauthenticated: this.#unauthenticated, streams, remoteListeners, conns, replayBytes };
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
    const sessions = [...this.#byClientId.values()];
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
    if (!tokensEqual(hello.token, this.#options.token)) {
      this.#throttle.failed(link.remoteAddress);
      link.logger.warn({}, 'authentication failed: wrong token');
      return link.refuse(TunnelErrorCode.AUTH, 'authentication failed: the token is not valid for this server');
    }
    if (hello.resumeSession) return this.#onResume(link, hello, hello.resumeSession, uncount);
    this.#throttle.succeeded(link.remoteAddress);
    const previous = this.#byClientId.get(hello.clientId);
    if (previous) {
      // The client came back with a fresh session before we noticed its old
      // one died (or without resuming it): free its -R ports for the new one.
      previous.end('replaced by a new session of the same client');
      await previous.link?.session.closed;
    } else if (this.#byClientId.size >= this.#limits.maxSessions) {
      return link.refuse(TunnelErrorCode.LIMIT, `the server is full: it holds its limit of ${this.#limits.maxSessions} client sessions`);
    }
    if (link.isClosing || link.session.isClosed) return;
    uncount();
    const session = new ServerSession(this.#sessionContext(), hello.clientId, hello.resume === true);
    this.#byClientId.set(hello.clientId, session);
    this.#sessionOf.set(link, session);
    link.logger.info({ sessionId: session.sessionId, clientId: hello.clientId }, 'client authenticated');
    session.start(link);
  }

  #onResume(link: ServerConnection, hello: HelloMessage, wanted: { sessionId: string; secret: string }, uncount: () => void): void {
    const session = this.#byClientId.get(hello.clientId);
    if (!session || session.sessionId !== wanted.sessionId || !session.secretMatches(wanted.secret)) {
      const expired = this.#expired.get(wanted.sessionId);
      let why: string;
      if (session && session.sessionId === wanted.sessionId) {
        // The session exists: this is not its client.
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
    uncount();
    const old = session.link;
    if (old) this.#sessionOf.delete(old);
    this.#sessionOf.set(link, session);
    link.logger.info({ sessionId: session.sessionId }, 'client resumes its session');
    session.resume(link);
  }

  #sessionContext(): SessionContext {
    return {
      policy: this.#options.policy,
      limits: this.#limits,
      logger: this.#logger,
      resumeGraceMs: this.#options.resumeGraceMs,
      ended: (session) => {
        if (this.#byClientId.get(session.clientId) === session) this.#byClientId.delete(session.clientId);
        if (session.expired) this.#rememberExpired(session.sessionId, this.#options.resumeGraceMs);
      },
    };
  }

  /** Which sessions expired recently, so a late resume hears why it is refused. Bounded. */
  #rememberExpired(sessionId: string, graceMs: number): void {
    this.#expired.set(sessionId, graceMs);
    if (this.#expired.size > 1_000) {
      const oldest = this.#expired.keys().next().value;
      if (oldest !== undefined) this.#expired.delete(oldest);
    }
  }
}
