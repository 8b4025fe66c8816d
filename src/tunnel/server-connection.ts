import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ErrorCode, server as muxadoServer, type Session, type SessionOptions, type Stream } from '../muxado/index.js';
import { tokensEqual } from './auth.js';
import { abortSocket, bridge } from './bridge.js';
import { ControlChannel } from './control-channel.js';
import { PROTOCOL_VERSION, StreamKind, validateClientMessage, type ClientMessage, type HelloMessage, type ListenMessage, type ServerMessage } from './control-messages.js';
import { TunnelErrorCode } from './errors.js';
import { describeError } from '../util/errors.js';
import { describeListenError, type TunnelLogger } from './logger.js';
import { checkLocalTarget, checkRemotePort, type ServerPolicy } from './policy.js';
import type { AuthThrottle } from './auth-throttle.js';
import type { ServerLimits } from './server-limits.js';
import { encodeStreamHeader, isLocalForwardHeader, readStreamHeader } from './stream-header.js';
import { dialAndBridge } from './dial.js';
import { logConnection } from './connection-log.js';

/** What a connection needs from its server. */
export interface ConnectionContext {
  token: string;
  policy: ServerPolicy;
  limits: ServerLimits;
  session: SessionOptions;
  logger: TunnelLogger;
  throttle: AuthThrottle;
  /** Called once the client authenticated; may replace an older session of the same client. */
  authenticated(connection: ServerConnection): Promise<void>;
  /** Called once when the connection is over. */
  ended(connection: ServerConnection): void;
}

/** One client: its TLS connection, muxado session, control stream and -R listeners. */
export class ServerConnection {
  readonly session: Session;
  readonly remote: string;
  readonly remoteAddress: string;
  readonly logger: TunnelLogger;
  readonly sessionId = randomUUID();
  clientId = '';
  isAuthenticated = false;

  readonly #context: ConnectionContext;
  readonly #listeners = new Map<number, net.Server>();
  #control: ControlChannel<ClientMessage, ServerMessage> | null = null;
  #authTimer: NodeJS.Timeout | null;
  #closing = false;
  #helloSeen = false;

  constructor(context: ConnectionContext, socket: TLSSocket) {
    this.#context = context;
    this.remoteAddress = socket.remoteAddress ?? '?';
    this.remote = `${this.remoteAddress}:${socket.remotePort ?? '?'}`;
    this.logger = context.logger.child({ client: this.remote });
    this.session = muxadoServer(socket, {
      ...context.session,
      // The control stream is one of the client's streams too; the limit is about forwards.
      maxStreams: context.limits.maxStreams + 1,
      acceptBacklog: context.limits.acceptBacklog,
      maxSessionWindowGrowth: context.limits.maxSessionBufferBytes,
    });
    this.session.on('stream', (stream) => this.#onStream(stream));
    // The engine's count includes the control stream, hence the flag's value beside it.
    this.session.on('refused', (error) =>
      this.logger.warn({ reason: error.message, maxStreams: context.limits.maxStreams }, 'refused a stream: the client is at a limit (--max-streams forwards, or too many streams waiting to be served)'),
    );
    void this.session.closed.then((end) => {
      if (this.#authTimer) clearTimeout(this.#authTimer);
      this.#closeListeners();
      if (this.isAuthenticated) {
        const fields = { sessionId: this.sessionId, ...(end.error ? { reason: end.error.message } : {}) };
        if (end.error && !this.#closing) this.logger.warn(fields, 'client session ended');
        else this.logger.info(fields, 'client session ended');
      }
      context.ended(this);
    });
    this.#authTimer = setTimeout(() => {
      this.logger.warn({ timeoutMs: context.limits.handshakeTimeoutMs }, 'client did not authenticate in time; closing');
      this.#closing = true;
      this.session.close();
    }, context.limits.handshakeTimeoutMs);
    this.#authTimer.unref();
  }

  /** Ends the session (GOAWAY, then close) and its -R listeners. */
  close(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.logger.info({ reason }, 'closing client session');
    this.session.goAway(ErrorCode.NO_ERROR, reason);
    this.session.close();
  }

  /** Stops new streams both ways: GOAWAY and no more -R accepts. Open streams go on. */
  async drainStart(reason: string): Promise<void> {
    this.session.goAway(ErrorCode.NO_ERROR, reason);
    this.#closeListeners();
  }

  /** The client's control stream, once it opened one: it stays open until the session ends. */
  get controlStream(): Stream | null {
    return this.#control?.stream ?? null;
  }

  get remoteListeners(): number {
    return this.#listeners.size;
  }

  /**
   * Stops the -R listeners accepting; their ports are free when this
   * returns (close() releases the socket at once). Not close()'s callback:
   * that waits for every connection the listener accepted, and those are
   * streams of this session that the drain is letting finish, so waiting
   * for them here would hold shutdown until the last one ended on its own.
   */
  #closeListeners(): void {
    for (const listener of this.#listeners.values()) listener.close();
    this.#listeners.clear();
  }

  #onStream(stream: Stream): void {
    stream.on('error', () => {});
    if (!this.isAuthenticated) {
      if (stream.type === StreamKind.CONTROL && this.#control === null) {
        this.#control = new ControlChannel<ClientMessage, ServerMessage>(stream, validateClientMessage);
        this.#control.on('message', (message) => void this.#onMessage(message));
        this.#control.on('invalid', (error) => this.refuse(error.code, error.message));
        this.#control.on('close', () => {
          if (!this.#closing) this.close('the control stream ended');
        });
        return;
      }
      this.logger.warn({ streamType: stream.type }, 'stream before authentication; refusing');
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    if (stream.type === StreamKind.LOCAL_FORWARD) {
      void this.#serveLocalForward(stream);
      return;
    }
    this.logger.warn({ streamType: stream.type }, 'stream of a type a client may not open; refusing');
    stream.reset(ErrorCode.REFUSED_STREAM);
  }

  async #onMessage(message: ClientMessage): Promise<void> {
    switch (message.type) {
      case 'hello':
        if (this.#helloSeen) return this.refuse(TunnelErrorCode.PROTOCOL, 'hello sent twice');
        this.#helloSeen = true;
        return this.#onHello(message);
      case 'listen':
        if (!this.isAuthenticated) return this.refuse(TunnelErrorCode.PROTOCOL, `"${message.type}" before hello`);
        return this.#onListen(message);
    }
  }

  async #onHello(hello: HelloMessage): Promise<void> {
    if (hello.version !== PROTOCOL_VERSION) {
      return this.refuse(TunnelErrorCode.VERSION, `this server speaks tunnel protocol version ${PROTOCOL_VERSION}, the client ${hello.version}`);
    }
    // The hello came in time; what follows may be slowed down on purpose.
    if (this.#authTimer) clearTimeout(this.#authTimer);
    this.#authTimer = null;
    const throttle = this.#context.throttle;
    const delay = throttle.delayFor(this.remoteAddress);
    if (delay > 0) {
      this.logger.debug({ delayMs: delay }, 'recent failed authentications from this address: answering later');
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.#closing || this.session.isClosed) return;
    }
    if (!tokensEqual(hello.token, this.#context.token)) {
      throttle.failed(this.remoteAddress);
      this.logger.warn({}, 'authentication failed: wrong token');
      return this.refuse(TunnelErrorCode.AUTH, 'authentication failed: the token is not valid for this server');
    }
    throttle.succeeded(this.remoteAddress);
    this.clientId = hello.clientId;
    this.isAuthenticated = true;
    await this.#context.authenticated(this);
    if (this.#closing || this.session.isClosed) return;
    this.logger.info({ sessionId: this.sessionId, clientId: this.clientId }, 'client authenticated');
    this.#control?.send({ type: 'welcome', version: PROTOCOL_VERSION, sessionId: this.sessionId });
  }

  #onListen(request: ListenMessage): void {
    const { id, bindHost, port } = request;
    const refuse = (code: string, message: string): void => {
      this.logger.warn({ bindHost, port, code }, `refused -R: ${message}`);
      this.#control?.send({ type: 'error', id, code, message });
    };
    if (this.#listeners.has(id)) return refuse(TunnelErrorCode.PROTOCOL, `forward id ${id} is already in use`);
    if (this.#listeners.size >= this.#context.limits.maxRemoteListeners) {
      return refuse(TunnelErrorCode.LIMIT, `this client already holds ${this.#listeners.size} -R listeners (the server's limit)`);
    }
    const refusal = checkRemotePort(this.#context.policy, port);
    if (refusal) return refuse(TunnelErrorCode.POLICY, refusal);

    const listener = net.createServer({ allowHalfOpen: true });
    // Held from now, not from when the bind completes: requests that arrive
    // together must all see it, or each would pass the limit.
    this.#listeners.set(id, listener);
    listener.on('connection', (socket) => this.#onRemoteConnection(id, socket));
    listener.once('error', (error: NodeJS.ErrnoException) => {
      if (this.#listeners.get(id) === listener) this.#listeners.delete(id);
      refuse(TunnelErrorCode.BIND, `cannot listen on ${bindHost}:${port}: ${describeListenError(error)}`);
    });
    listener.listen({ host: bindHost, port }, () => {
      if (this.#closing || this.session.isClosed || this.#listeners.get(id) !== listener) {
        // The session ended, or drained its listeners, while this one was binding.
        listener.close();
        return;
      }
      listener.on('error', (error) => this.logger.warn({ error: describeError(error) }, '-R listener failed'));
      const actual = (listener.address() as net.AddressInfo).port;
      this.logger.info({ bindHost, port: actual }, '-R listening');
      this.#control?.send({ type: 'listening', id, bindHost, port: actual });
    });
  }

  #onRemoteConnection(forward: number, socket: net.Socket): void {
    let stream: Stream;
    try {
      stream = this.session.open({ type: StreamKind.REMOTE_FORWARD });
    } catch (error) {
      this.logger.warn({ error: describeError(error) }, 'cannot open a -R stream; resetting the connection');
      socket.resetAndDestroy();
      return;
    }
    this.#applyIdleTimeout(socket);
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    stream.write(encodeStreamHeader({ forward, peer }));
    const local = socket.address() as net.AddressInfo;
    const closed = logConnection(this.logger, { forward: `-R ${local.address}:${local.port}`, peer, target: `the client's forward ${forward}`, streamId: stream.id });
    // bridge() handles both sides' errors from here; no listener of our own is needed.
    bridge(socket, stream, closed);
  }

  async #serveLocalForward(stream: Stream): Promise<void> {
    let header: unknown;
    try {
      header = await readStreamHeader(stream, this.#context.limits.headerTimeoutMs);
    } catch (error) {
      this.logger.warn({ error: describeError(error) }, 'bad -L stream header; resetting the stream');
      stream.reset(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (!isLocalForwardHeader(header)) {
      this.logger.warn({}, 'malformed -L stream header; resetting the stream');
      stream.reset(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const { host, port } = header;
    const refusal = checkLocalTarget(this.#context.policy, host, port);
    if (refusal) {
      this.logger.warn({ target: `${host}:${port}` }, `refused -L: ${refusal}`);
      this.#control?.send({ type: 'forward-failed', streamId: stream.id, code: TunnelErrorCode.POLICY, message: refusal });
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    let closed: ReturnType<typeof logConnection>;
    dialAndBridge(stream, {
      host,
      port,
      timeoutMs: this.#context.limits.dialTimeoutMs,
      onConnected: (socket) => {
        this.#applyIdleTimeout(socket);
        closed = logConnection(this.logger, { forward: '-L', peer: this.remote, target: `${host}:${port}`, streamId: stream.id });
      },
      onEnd: (end) => closed?.(end),
      onFailed: (error) => {
        const message = `dialling ${host}:${port} failed: ${describeError(error)}`;
        this.logger.warn({ target: `${host}:${port}`, streamId: stream.id }, message);
        this.logger.debug({ forward: '-L', peer: this.remote, target: `${host}:${port}`, streamId: stream.id, end: `dial failed: ${describeError(error)}` }, 'connection closed');
        this.#control?.send({ type: 'forward-failed', streamId: stream.id, code: TunnelErrorCode.DIAL, message });
      },
    });
  }

  #applyIdleTimeout(socket: net.Socket): void {
    const idle = this.#context.limits.idleTimeoutMs;
    if (idle <= 0) return;
    socket.setTimeout(idle, () => {
      this.logger.info({ idleMs: idle }, 'closing an idle forwarded connection');
      abortSocket(socket);
    });
  }

  /** Tells the client why, then ends the session. */
  refuse(code: string, message: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.logger.warn({ code }, message);
    const control = this.#control;
    const close = (): void => this.session.close();
    if (control && !control.stream.destroyed) {
      control.send({ type: 'error', code, message });
      // Close once the message is on the wire (write callbacks run in order), or soon regardless.
      control.stream.write(Buffer.alloc(0), close);
      setTimeout(close, 1_000).unref();
    } else {
      close();
    }
  }
}
