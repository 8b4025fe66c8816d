import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { ErrorCode, StreamResetError, client as muxadoClient, type Session, type SessionEnd, type SessionOptions, type Stream } from '../muxado/index.js';
import { connectTls, TlsErrorCode, type ClientTrust } from '../tls/index.js';
import { Backoff } from './backoff.js';
import { bridge } from './bridge.js';
import { ControlChannel } from './control-channel.js';
import { PROTOCOL_VERSION, StreamKind, type ServerMessage } from './control-messages.js';
import { waitForDrain } from './drain.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { dialAndBridge } from './dial.js';
import { describeForward, type ForwardSpec } from './forward.js';
import { describeError, errnoCode } from '../util/errors.js';
import { describeListenError, silentLogger, type TunnelLogger } from './logger.js';
import { encodeStreamHeader, isRemoteForwardHeader, readStreamHeader } from './stream-header.js';

export interface TunnelClientOptions {
  host: string;
  port: number;
  /** SNI / CA host name, when it differs from `host`. */
  servername?: string;
  token: string;
  trust: ClientTrust;
  local: ForwardSpec[];
  remote: ForwardSpec[];
  /** Reconnect with backoff when the session drops. Default true. */
  reconnect?: boolean;
  backoff?: { baseMs?: number; capMs?: number };
  connectTimeoutMs?: number;
  /** The server must answer hello within this many ms. Default 10,000. */
  handshakeTimeoutMs?: number;
  /** Dialling a -R target must succeed within this many ms. Default 10,000. */
  dialTimeoutMs?: number;
  /** How long a -L connection waits for a session while reconnecting. Default 5,000. */
  waitForSessionMs?: number;
  session?: SessionOptions;
  logger?: TunnelLogger;
}

export interface TunnelClientEvents {
  /** A session is up and every -R request was answered (`remote` holds the ports the server bound). */
  ready: [info: { sessionId: string; remote: Array<{ spec: ForwardSpec; port: number }>; reconnect: boolean }];
}

// Errors that a retry cannot fix: the user must act.
const FATAL_CODES = new Set<string>([
  TunnelErrorCode.AUTH,
  TunnelErrorCode.VERSION,
  TunnelErrorCode.NO_FORWARDS,
  'ERR_MUXTUN_HOST_KEY_CHANGED',
  TlsErrorCode.FINGERPRINT_MISMATCH,
  TlsErrorCode.TLS_UNTRUSTED,
  TlsErrorCode.TLS_CONFIG,
  TlsErrorCode.BAD_FINGERPRINT,
]);

/** `muxtun connect`: -L listeners here, -R listeners on the server, one session, reconnecting. */
export class TunnelClient extends EventEmitter<TunnelClientEvents> {
  readonly clientId = randomUUID();
  readonly #options: TunnelClientOptions;
  readonly #logger: TunnelLogger;
  readonly #backoff: Backoff;
  readonly #localListeners: net.Server[] = [];
  /** Ports the server picked for -R forwards that asked for port 0, by forward id. */
  readonly #grantedPorts = new Map<number, number>();
  #session: Session | null = null;
  #sessionWaiters: Array<(session: Session | null) => void> = [];
  #stopping = false;
  #wake: (() => void) | null = null;
  #stopped: Promise<void> | null = null;

  constructor(options: TunnelClientOptions) {
    super();
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#backoff = new Backoff(options.backoff);
  }

  /** Counts for monitoring and tests: whether a session is up, its open forward streams, -L listeners. */
  stats(): { connected: boolean; streams: number; localListeners: number } {
    const session = this.#session;
    const connected = session !== null && !session.isClosed;
    return { connected, streams: connected ? Math.max(0, session.openStreams - 1) : 0, localListeners: this.#localListeners.length };
  }

  /** Addresses of the -L listeners, in the order given. */
  get localAddresses(): net.AddressInfo[] {
    return this.#localListeners.map((l) => l.address() as net.AddressInfo);
  }

  /**
   * Binds the -L listeners, connects, and keeps the tunnel up until `stop()`.
   * Resolves after a clean stop; rejects with the reason the tunnel cannot go
   * on (bad token, untrusted server, a port in use, a lost session without
   * reconnect), so the caller can print it and exit.
   */
  async run(): Promise<void> {
    try {
      for (const spec of this.#options.local) await this.#bindLocal(spec);
      let everConnected = false;
      while (!this.#stopping) {
        let end: SessionEnd | null = null;
        try {
          end = await this.#connectOnce(everConnected);
          everConnected = true;
        } catch (error) {
          if (this.#stopping) break;
          if (!everConnected || FATAL_CODES.has(errnoCode(error) ?? '')) throw error;
          this.#logger.warn({ error: describeError(error) }, 'reconnect attempt failed');
        }
        if (this.#stopping) break;
        if (end) {
          const reason = end.error ? end.error.message : 'the server closed the session';
          if (this.#options.reconnect === false) {
            throw new TunnelError(TunnelErrorCode.SESSION_LOST, `lost the session to the server: ${reason}`);
          }
          this.#logger.warn({ reason }, 'session to the server lost');
        }
        const delay = this.#backoff.next();
        this.#logger.info({ attempt: this.#backoff.attempt, delayMs: delay }, `reconnecting in ${(delay / 1000).toFixed(1)} s`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = null;
      }
    } finally {
      await this.#closeLocalListeners();
      this.#setSession(null);
    }
  }

  /**
   * Graceful stop: close the -L listeners, send GOAWAY, let open streams
   * finish for up to `drainMs`, then close the session.
   */
  stop(drainMs = 5_000): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      this.#wake?.();
      await this.#closeLocalListeners();
      const session = this.#session;
      if (session) {
        session.goAway(ErrorCode.NO_ERROR, 'client shutting down');
        await waitForDrain([session], 1, drainMs);
        session.close();
        await session.closed;
      }
    })();
    return this.#stopped;
  }

  async #bindLocal(spec: ForwardSpec): Promise<void> {
    const listener = net.createServer({ allowHalfOpen: true }, (socket) => void this.#onLocalConnection(spec, socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (error) =>
        reject(new TunnelError(TunnelErrorCode.BIND, `cannot listen for ${describeForward('-L', spec)}: ${describeListenError(error)}`, { cause: error })),
      );
      listener.listen({ host: spec.bindHost, port: spec.bindPort }, () => resolve());
    });
    listener.on('error', (error) => this.#logger.warn({ error: describeError(error) }, '-L listener failed'));
    this.#localListeners.push(listener);
    const port = (listener.address() as net.AddressInfo).port;
    this.#logger.info({ forward: describeForward('-L', { ...spec, bindPort: port }) }, '-L listening');
  }

  async #closeLocalListeners(): Promise<void> {
    const listeners = this.#localListeners.splice(0);
    await Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
  }

  /** Connects, authenticates, requests -R; resolves when that session ends. Throws if it never came up. */
  async #connectOnce(isReconnect: boolean): Promise<SessionEnd> {
    const { host, port } = this.#options;
    const connection = await connectTls({
      host,
      port,
      trust: this.#options.trust,
      ...(this.#options.servername ? { servername: this.#options.servername } : {}),
      ...(this.#options.connectTimeoutMs ? { timeoutMs: this.#options.connectTimeoutMs } : {}),
    });
    if (connection.recorded) {
      this.#logger.warn({ fingerprint: connection.fingerprint }, 'first connection to this server: recorded its fingerprint in known_hosts (trust on first use)');
    }
    this.#logger.debug({ fingerprint: connection.fingerprint }, 'TLS connected');
    this.#warnIfExpired(connection.validTo);
    connection.socket.on('error', () => {});
    const session = muxadoClient(connection.socket, this.#options.session);
    const control = new ControlChannel(session.open({ type: StreamKind.CONTROL }));
    control.send({ type: 'hello', version: PROTOCOL_VERSION, token: this.#options.token, clientId: this.clientId });

    let sessionId: string;
    try {
      sessionId = await this.#awaitWelcome(session, control);
    } catch (error) {
      session.close();
      throw error;
    }
    this.#backoff.reset();
    session.on('stream', (stream) => void this.#onRemoteStream(stream));
    control.on('message', (message) => this.#onServerMessage(message));
    control.on('invalid', (error) => {
      this.#logger.error({ error: error.message }, 'the server sent a bad control message; reconnecting');
      session.close();
    });

    const remote = await this.#requestRemoteForwards(session, control);
    if (this.#options.local.length === 0 && this.#options.remote.length > 0 && remote.length === 0) {
      session.close();
      throw new TunnelError(TunnelErrorCode.NO_FORWARDS, 'no forward could be set up (see the errors above)');
    }
    this.#setSession(session);
    this.#logger.info({ sessionId, server: `${host}:${port}` }, isReconnect ? 'reconnected' : 'connected');
    this.emit('ready', { sessionId, remote, reconnect: isReconnect });
    const end = await session.closed;
    this.#setSession(null);
    return end;
  }

  /**
   * A pin (or a known_hosts record) trusts one exact certificate, dates
   * included, like an ssh host key: an expired one is accepted, but the
   * operator should hear about it. (CA mode refuses it in the handshake.)
   */
  #warnIfExpired(validTo: string): void {
    const { kind } = this.#options.trust;
    if (kind !== 'fingerprint' && kind !== 'tofu') return;
    if (!(Date.parse(validTo) < Date.now())) return;
    const why = kind === 'fingerprint' ? '--fingerprint pins this exact certificate' : 'known_hosts records this exact certificate';
    this.#logger.warn({ validTo }, `the server's certificate expired on ${validTo}; accepted because ${why} (dates are not checked for pinned certificates)`);
  }

  #awaitWelcome(session: Session, control: ControlChannel): Promise<string> {
    const { host, port } = this.#options;
    const timeoutMs = this.#options.handshakeTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        control.off('message', onMessage);
        control.off('invalid', onInvalid);
      };
      const notMuxtun = (why: string): TunnelError =>
        new TunnelError(TunnelErrorCode.HANDSHAKE, `${host}:${port} ${why}: is it a muxtun server?`);
      const timer = setTimeout(() => {
        done();
        reject(notMuxtun(`did not answer the muxtun handshake within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (message: ServerMessage | { type: string }): void => {
        if (message.type === 'welcome') {
          done();
          resolve((message as { sessionId: string }).sessionId);
        } else if (message.type === 'error') {
          done();
          const { code, message: text } = message as { code: string; message: string };
          const known = Object.values(TunnelErrorCode).find((c) => c === code) ?? TunnelErrorCode.PROTOCOL;
          reject(new TunnelError(known, `the server refused the connection: ${text}`));
        }
      };
      const onInvalid = (error: TunnelError): void => {
        done();
        reject(notMuxtun(`sent something that is not a muxtun handshake (${error.message})`));
      };
      control.on('message', onMessage);
      control.on('invalid', onInvalid);
      void session.closed.then((end) => {
        done();
        // An error this side detected means the peer sent bytes that are not
        // muxado (an HTTPS or echo server): saying it hung up would mislead.
        const why =
          end.initiator === 'local' && end.error
            ? `answered with something that is not the muxtun protocol (${end.error.message})`
            : `closed the connection during the handshake${end.error ? ` (${end.error.message})` : ''}`;
        reject(notMuxtun(why));
      });
    });
  }

  async #requestRemoteForwards(session: Session, control: ControlChannel): Promise<Array<{ spec: ForwardSpec; port: number }>> {
    const specs = this.#options.remote;
    if (specs.length === 0) return [];
    const results = await new Promise<Array<{ spec: ForwardSpec; port: number } | null>>((resolve) => {
      const answers = new Array<{ spec: ForwardSpec; port: number } | null | undefined>(specs.length);
      let pending = specs.length;
      const requested = specs.map((spec, id) => this.#grantedPorts.get(id) ?? spec.bindPort);
      const onMessage = (message: ServerMessage | { type: string }): void => {
        if (message.type !== 'listening' && message.type !== 'error') return;
        const { id } = message as { id?: number };
        if (id === undefined || id < 0 || id >= specs.length || answers[id] !== undefined) return;
        const spec = specs[id]!;
        if (message.type === 'listening') {
          const port = (message as { port: number }).port;
          answers[id] = { spec, port };
          // A forward asked for "any port" keeps the one it got across reconnects.
          if (spec.bindPort === 0) this.#grantedPorts.set(id, port);
          this.#logger.info({ forward: describeForward('-R', { ...spec, bindPort: port }) }, '-R listening on the server');
        } else {
          const code = (message as { code: string }).code;
          if (requested[id] !== spec.bindPort && code === TunnelErrorCode.BIND) {
            this.#logger.warn({ forward: describeForward('-R', spec), port: requested[id] }, 'the port this forward had before is taken now; asking for any free port');
            this.#grantedPorts.delete(id);
            requested[id] = spec.bindPort;
            control.send({ type: 'listen', id, bindHost: spec.bindHost, port: spec.bindPort });
            return;
          }
          answers[id] = null;
          this.#logger.error({ forward: describeForward('-R', spec), code }, (message as { message: string }).message);
        }
        if (--pending === 0) finish();
      };
      const finish = (): void => {
        control.off('message', onMessage);
        resolve(answers.map((a) => a ?? null));
      };
      control.on('message', onMessage);
      void session.closed.then(finish);
      specs.forEach((spec, id) => control.send({ type: 'listen', id, bindHost: spec.bindHost, port: requested[id]! }));
    });
    return results.filter((r): r is { spec: ForwardSpec; port: number } => r !== null);
  }

  #onServerMessage(message: ServerMessage | { type: string }): void {
    if (message.type === 'forward-failed') {
      const { message: text, streamId } = message as { message: string; streamId: number };
      this.#logger.warn({ streamId }, `the server could not serve a -L connection: ${text}`);
    } else if (message.type === 'error' && (message as { id?: number }).id === undefined) {
      this.#logger.error({ code: (message as { code: string }).code }, (message as { message: string }).message);
    }
  }

  #setSession(session: Session | null): void {
    this.#session = session;
    if (session) {
      const waiters = this.#sessionWaiters;
      this.#sessionWaiters = [];
      for (const waiter of waiters) waiter(session);
    } else if (this.#stopping) {
      const waiters = this.#sessionWaiters;
      this.#sessionWaiters = [];
      for (const waiter of waiters) waiter(null);
    }
  }

  #awaitSession(): Promise<Session | null> {
    if (this.#session && !this.#session.isClosed) return Promise.resolve(this.#session);
    if (this.#stopping) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#sessionWaiters = this.#sessionWaiters.filter((w) => w !== waiter);
        resolve(null);
      }, this.#options.waitForSessionMs ?? 5_000);
      const waiter = (session: Session | null): void => {
        clearTimeout(timer);
        resolve(session);
      };
      this.#sessionWaiters.push(waiter);
    });
  }

  async #onLocalConnection(spec: ForwardSpec, socket: net.Socket): Promise<void> {
    // Until bridge() takes over, an error here just means the connection went away.
    const ignore = (): void => {};
    socket.on('error', ignore);
    const session = await this.#awaitSession();
    if (!session || socket.destroyed) {
      this.#logger.warn({ forward: describeForward('-L', spec) }, 'not connected to the server; resetting a local connection');
      socket.resetAndDestroy();
      return;
    }
    let stream: Stream;
    try {
      stream = session.open({ type: StreamKind.LOCAL_FORWARD });
    } catch (error) {
      this.#logger.warn({ error: describeError(error) }, 'cannot open a stream; resetting a local connection');
      socket.resetAndDestroy();
      return;
    }
    // Zero round trips: the header and the first data go right behind the SYN.
    stream.write(encodeStreamHeader({ host: spec.targetHost, port: spec.targetPort }));
    socket.off('error', ignore);
    bridge(socket, stream, (end) => {
      if (end.error instanceof StreamResetError && end.error.remote && end.error.errorCode === ErrorCode.REFUSED_STREAM) {
        // The engine refuses at a limit without a word on the control stream: say it here.
        this.#logger.warn(
          { forward: describeForward('-L', spec), streamId: stream.id },
          'the server refused a -L connection (REFUSED_STREAM): it is at a limit such as its --max-streams, or its policy forbids the target',
        );
      } else if (end.error) {
        this.#logger.debug({ streamId: stream.id, error: describeError(end.error) }, '-L connection reset');
      }
    });
  }

  async #onRemoteStream(stream: Stream): Promise<void> {
    stream.on('error', () => {});
    if (stream.type !== StreamKind.REMOTE_FORWARD) {
      this.#logger.warn({ streamType: stream.type }, 'the server opened a stream of a type it may not open; refusing');
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    let header: unknown;
    try {
      header = await readStreamHeader(stream, 5_000);
    } catch (error) {
      this.#logger.warn({ error: describeError(error) }, 'bad -R stream header; resetting the stream');
      stream.reset(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    const spec = isRemoteForwardHeader(header) ? this.#options.remote[header.forward] : undefined;
    if (!spec) {
      this.#logger.warn({}, '-R stream for a forward this client did not request; refusing');
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    const peer = (header as { peer: string }).peer;
    dialAndBridge(stream, {
      host: spec.targetHost,
      port: spec.targetPort,
      timeoutMs: this.#options.dialTimeoutMs ?? 10_000,
      onConnected: () => this.#logger.debug({ peer, target: `${spec.targetHost}:${spec.targetPort}` }, '-R connection'),
      onFailed: (error) =>
        this.#logger.warn({ peer, forward: describeForward('-R', spec) }, `dialling ${spec.targetHost}:${spec.targetPort} failed: ${describeError(error)}`),
    });
  }
}
