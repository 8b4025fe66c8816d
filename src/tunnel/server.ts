import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { serverTlsOptions } from '../tls/index.js';
import { waitForDrain } from './drain.js';
import { describeError } from '../util/errors.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeListenError, type TunnelLogger } from './logger.js';
import { ServerConnection } from './server-connection.js';
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
  /** Connections not authenticated yet, by remote address:port: the way to uncount each. */
  readonly #unauthenticatedBy = new Map<string, () => void>();
  readonly #connections = new Set<ServerConnection>();
  readonly #byClientId = new Map<string, ServerConnection>();
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
  }

  /** Starts listening; resolves with the bound address, rejects if the port cannot be bound. */
  listen(): Promise<AddressInfo> {
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

  /** Client sessions that authenticated and are still open. */
  get sessionCount(): number {
    return this.#byClientId.size;
  }

  /** Counts for monitoring and tests: sessions, connections still authenticating, open forward streams, -R listeners. */
  stats(): { sessions: number; unauthenticated: number; streams: number; remoteListeners: number } {
    let streams = 0;
    let remoteListeners = 0;
    for (const connection of this.#connections) {
      // The control stream is not a forward.
      streams += Math.max(0, connection.session.openStreams - (connection.isAuthenticated ? 1 : 0));
      remoteListeners += connection.remoteListeners;
    }
    return { sessions: this.#byClientId.size, unauthenticated: this.#unauthenticated, streams, remoteListeners };
  }

  /**
   * Graceful stop: stop accepting, send GOAWAY, close -R listeners, let open
   * streams finish for up to `drainMs`, then close every session.
   */
  async stop(drainMs = 5_000): Promise<{ drained: boolean }> {
    if (this.#stopping) return { drained: true };
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    const connections = [...this.#connections];
    await Promise.all(connections.map((c) => c.drainStart('server shutting down')));
    const drained = await waitForDrain(
      connections.map((c) => ({ session: c.session, keep: c.controlStream ? [c.controlStream] : [] })),
      drainMs,
    );
    for (const connection of connections) connection.close('server shutting down');
    await Promise.all(connections.map((c) => c.session.closed));
    await closed;
    return { drained };
  }

  #onTcpConnection(socket: net.Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('error', () => {});
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    if (this.#unauthenticated >= this.#limits.maxUnauthenticated) {
      this.#logger.warn({ remote, limit: this.#limits.maxUnauthenticated }, 'too many unauthenticated connections; dropping one');
      socket.destroy();
      return;
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
    this.#tls.emit('connection', socket);
  }

  #onConnection(socket: tls.TLSSocket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('error', () => {});
    // The TLS socket runs on the TCP connection counted at accept: same peer address.
    const uncount = this.#unauthenticatedBy.get(remote) ?? ((): void => {});
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    const server = this;
    const connection = new ServerConnection(
      {
        token: this.#options.token,
        policy: this.#options.policy,
        limits: this.#limits,
        session: this.#options.session,
        logger: this.#logger,
        throttle: this.#throttle,
        async authenticated(conn) {
          uncount();
          const previous = server.#byClientId.get(conn.clientId);
          if (previous && previous !== conn) {
            // The client reconnected before we noticed its old session died:
            // free its -R ports for the new one.
            previous.close('replaced by a new session of the same client');
            await previous.session.closed;
          } else if (server.#byClientId.size >= server.#limits.maxSessions) {
            conn.refuse(TunnelErrorCode.LIMIT, `the server is full: it holds its limit of ${server.#limits.maxSessions} client sessions`);
            return;
          }
          server.#byClientId.set(conn.clientId, conn);
        },
        ended(conn) {
          uncount();
          server.#connections.delete(conn);
          if (server.#byClientId.get(conn.clientId) === conn) server.#byClientId.delete(conn.clientId);
        },
      },
      socket,
    );
    this.#connections.add(connection);
    connection.logger.debug({}, 'TLS connection accepted');
  }
}
