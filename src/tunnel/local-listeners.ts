import net from 'node:net';
import { describeError } from '../util/errors.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeForward, type ForwardSpec } from './forward.js';
import { describeListenError, type TunnelLogger } from './logger.js';

/** A bound -L listener: its forward, and the address it actually got (port 0 becomes a real port). */
export interface LocalListener {
  spec: ForwardSpec;
  server: net.Server;
  address: net.AddressInfo;
}

/**
 * The client's -L listeners. Binding happens before the first session, so
 * a port in use is fatal at start (like ssh's ExitOnForwardFailure) and
 * names the forward. Closing stops accepting at once: it does not wait for
 * the connections already accepted (net.Server.close's callback would).
 */
export class LocalListeners {
  readonly #listeners: LocalListener[] = [];
  readonly #logger: TunnelLogger;
  readonly #onConnection: (listener: LocalListener, socket: net.Socket) => void;

  constructor(logger: TunnelLogger, onConnection: (listener: LocalListener, socket: net.Socket) => void) {
    this.#logger = logger;
    this.#onConnection = onConnection;
  }

  get all(): readonly LocalListener[] {
    return this.#listeners;
  }

  /** Binds one listener; rejects with ERR_MUXTUN_BIND naming the forward. */
  async bind(spec: ForwardSpec): Promise<LocalListener> {
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new TunnelError(TunnelErrorCode.BIND, `cannot listen for ${describeForward('-L', spec)}: ${describeListenError(error)}`, { cause: error })),
      );
      server.listen({ host: spec.bindHost, port: spec.bindPort }, () => resolve());
    });
    const listener: LocalListener = { spec, server, address: server.address() as net.AddressInfo };
    server.on('error', (error) => this.#logger.warn({ error: describeError(error) }, '-L listener failed'));
    server.on('connection', (socket: net.Socket) => this.#onConnection(listener, socket));
    this.#listeners.push(listener);
    return listener;
  }

  /** Stops accepting on every listener; the ports are free when this returns. */
  close(): void {
    for (const { server } of this.#listeners.splice(0)) server.close();
  }
}
