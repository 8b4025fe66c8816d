import type { TLSSocket } from 'node:tls';
import { ErrorCode, server as muxadoServer, type Session, type SessionEnd, type SessionOptions, type Stream } from '../muxado/index.js';
import { ControlChannel } from './control-channel.js';
import { StreamKind, validateClientMessage, type ClientMessage, type HelloMessage, type ServerMessage } from './control-messages.js';
import { TunnelErrorCode } from './errors.js';
import type { TunnelLogger } from './logger.js';
import type { ServerLimits } from './server-limits.js';

export type ServerControl = ControlChannel<ClientMessage, ServerMessage>;

/** What a connection needs from its server. */
export interface LinkContext {
  limits: ServerLimits;
  /**
   * The engine's cap on forward streams per side: the highest maxStreams of
   * the server and its users (a user's own limit is the tunnel session's to
   * enforce, once it is known who connected).
   */
  streamCap: number;
  session: SessionOptions;
  logger: TunnelLogger;
  /** The client said hello: authenticate it and give the link a tunnel session (or refuse it). */
  hello(link: ServerConnection, hello: HelloMessage): Promise<void>;
  /** Called once when the transport is over. */
  ended(link: ServerConnection, end: SessionEnd): void;
}

/** Where an authenticated link sends what arrives on it: its tunnel session. */
export interface LinkOwner {
  onMessage(message: ClientMessage): void;
  onStream(stream: Stream): void;
}

/**
 * One TLS connection from a client: its muxado session and control stream,
 * up to the hello. Once authenticated it belongs to a tunnel session
 * (server-session.ts), which can outlive it: a resume hands the session a
 * new connection.
 */
export class ServerConnection {
  readonly session: Session;
  readonly remote: string;
  readonly remoteAddress: string;
  #logger: TunnelLogger;
  #owner: LinkOwner | null = null;
  #control: ServerControl | null = null;
  /** Messages that came after the hello, before it was answered (a resume's state follows its hello at once). */
  #early: ClientMessage[] = [];
  readonly #context: LinkContext;
  #authTimer: NodeJS.Timeout | null;
  #closing = false;
  #helloSeen = false;

  /** `peer`: who is at the other end when the socket cannot say (TLS over a WebSocket: the HTTP peer). */
  constructor(context: LinkContext, socket: TLSSocket, peer?: { address: string; port: number }) {
    this.#context = context;
    this.remoteAddress = peer?.address ?? socket.remoteAddress ?? '?';
    this.remote = `${this.remoteAddress}:${peer?.port ?? socket.remotePort ?? '?'}`;
    this.#logger = context.logger.child({ client: this.remote });
    this.session = muxadoServer(socket, {
      ...context.session,
      // The control stream is one of the client's streams too; the limit is about forwards.
      maxStreams: context.streamCap + 1,
      acceptBacklog: context.limits.acceptBacklog,
      maxSessionWindowGrowth: context.limits.maxSessionBufferBytes,
    });
    this.session.on('stream', (stream) => this.#onStream(stream));
    // The engine's count includes the control stream, hence the flag's value beside it.
    this.session.on('refused', (error) =>
      this.logger.warn({ reason: error.message, maxStreams: context.streamCap }, 'refused a stream: the client is at a limit (--max-streams forwards, or too many streams waiting to be served)'),
    );
    void this.session.closed.then((end) => {
      if (this.#authTimer) clearTimeout(this.#authTimer);
      context.ended(this, end);
    });
    this.#authTimer = setTimeout(() => {
      this.logger.warn({ timeoutMs: context.limits.handshakeTimeoutMs }, 'client did not authenticate in time; closing');
      this.#closing = true;
      this.session.close();
    }, context.limits.handshakeTimeoutMs);
    this.#authTimer.unref();
  }

  /** Lines about this connection: its client's address, and its user once authenticated. */
  get logger(): TunnelLogger {
    return this.#logger;
  }

  /** Authenticated as `user`: the connection's lines say so from now on. */
  authenticatedAs(user: string): void {
    this.#logger = this.#logger.child({ user });
  }

  get isAuthenticated(): boolean {
    return this.#owner !== null;
  }

  /** Whether this side is ending the connection on purpose (not a lost link). */
  get isClosing(): boolean {
    return this.#closing;
  }

  get control(): ServerControl | null {
    return this.#control;
  }

  /** The hello arrived in time; what follows may be slowed down on purpose. */
  helloInTime(): void {
    if (this.#authTimer) clearTimeout(this.#authTimer);
    this.#authTimer = null;
  }

  /** Authenticated: from now on messages and streams go to `owner`, starting with any that arrived early. */
  adopt(owner: LinkOwner): void {
    this.#owner = owner;
    const early = this.#early;
    this.#early = [];
    for (const message of early) owner.onMessage(message);
  }

  send(message: ServerMessage): void {
    this.#control?.send(message);
  }

  /** Ends the session (GOAWAY, then close). */
  close(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.logger.info({ reason }, 'closing client session');
    this.session.goAway(ErrorCode.NO_ERROR, reason);
    this.session.close();
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

  #onStream(stream: Stream): void {
    stream.on('error', () => {});
    if (this.#owner) {
      this.#owner.onStream(stream);
      return;
    }
    if (stream.type === StreamKind.CONTROL && this.#control === null) {
      this.#control = new ControlChannel<ClientMessage, ServerMessage>(stream, validateClientMessage);
      this.#control.on('message', (message) => this.#onMessage(message));
      this.#control.on('invalid', (error) => this.refuse(error.code, error.message));
      this.#control.on('close', () => {
        // The client closed it on purpose; a session that ended (a dropped link) closes it too, and is no such thing.
        if (!this.#closing && !this.session.isClosed) this.close('the control stream ended');
      });
      return;
    }
    this.logger.warn({ streamType: stream.type }, 'stream before authentication; refusing');
    stream.reset(ErrorCode.REFUSED_STREAM);
  }

  #onMessage(message: ClientMessage): void {
    if (message.type === 'hello') {
      if (this.#helloSeen) return this.refuse(TunnelErrorCode.PROTOCOL, 'hello sent twice');
      this.#helloSeen = true;
      void this.#context.hello(this, message);
      return;
    }
    if (this.#owner) return this.#owner.onMessage(message);
    if (!this.#helloSeen) return this.refuse(TunnelErrorCode.PROTOCOL, `"${message.type}" before hello`);
    // Between the hello and its answer (the throttle may delay it): keep a bounded few.
    if (this.#early.length >= 64) return this.refuse(TunnelErrorCode.PROTOCOL, 'too many messages before the hello was answered');
    this.#early.push(message);
  }
}
