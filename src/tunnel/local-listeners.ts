import net from 'node:net';
import { describeError } from '../util/errors.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import type { ForwardSpec } from './forward.js';
import { describeListenError, type TunnelLogger } from './logger.js';

/** A bound -L listener: its forward, and the address it actually got (port 0 becomes a real port). */
export interface LocalListener<Spec extends ListenSpec = ForwardSpec> {
  spec: Spec;
  server: net.Server;
  address: net.AddressInfo;
}

/** Where a listener listens: a -L forward, or a -D (SOCKS) listener. */
export interface ListenSpec {
  bindHost: string;
  bindPort: number;
}

/**
 * The client's -L (and, in another instance, -D) listeners. Binding happens before the first session, so
 * a port in use is fatal at start (like ssh's ExitOnForwardFailure) and
 * names the forward; one added later (a reloaded config) is bound then. Closing stops accepting at once: it does not wait for
 * the connections already accepted (net.Server.close's callback would).
 */
export class LocalListeners<Spec extends ListenSpec = ForwardSpec> {
  readonly #listeners: Array<LocalListener<Spec>> = [];
  readonly #logger: TunnelLogger;
  readonly #onConnection: (listener: LocalListener<Spec>, socket: net.Socket) => void;
  readonly #describe: (spec: Spec) => string;

  /** `describe` names a listener in errors and logs (`-L 127.0.0.1:8080 -> db:5432`, `-D 127.0.0.1:1080`). */
  constructor(logger: TunnelLogger, onConnection: (listener: LocalListener<Spec>, socket: net.Socket) => void, describe: (spec: Spec) => string) {
    this.#logger = logger;
    this.#onConnection = onConnection;
    this.#describe = describe;
  }

  get all(): ReadonlyArray<LocalListener<Spec>> {
    return this.#listeners;
  }

  /** Binds one listener; rejects with ERR_MUXTUN_BIND naming the forward. */
  async bind(spec: Spec): Promise<LocalListener<Spec>> {
    // noDelay, as OpenSSH sets on forwarded sockets: a reply written in pieces must not wait for an ACK (Nagle).
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new TunnelError(TunnelErrorCode.BIND, `cannot listen for ${this.#describe(spec)}: ${describeListenError(error)}`, { cause: error })),
      );
      server.listen({ host: spec.bindHost, port: spec.bindPort }, () => resolve());
    });
    const listener: LocalListener<Spec> = { spec, server, address: server.address() as net.AddressInfo };
    server.on('error', (error) => this.#logger.warn({ error: describeError(error) }, `${this.#describe(spec)}: listener failed`));
    server.on('connection', (socket: net.Socket) => this.#onConnection(listener, socket));
    this.#listeners.push(listener);
    return listener;
  }

  /**
   * Stops accepting on one listener (a forward removed while running); its
   * port is free when this returns and the connections it accepted go on.
   */
  closeOne(listener: LocalListener<Spec>): void {
    const index = this.#listeners.indexOf(listener);
    if (index === -1) return;
    this.#listeners.splice(index, 1);
    listener.server.close();
  }

  /** Stops accepting on every listener; the ports are free when this returns. */
  close(): void {
    for (const { server } of this.#listeners.splice(0)) server.close();
  }
}
