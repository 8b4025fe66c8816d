import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { webSocketByteStream } from './websocket-stream.js';
import { WS_MAX_PAYLOAD_BYTES } from './websocket-limits.js';
import { acceptStreamMode, wantsStreamMode } from './websocket-stream-accept.js';

/** Default of {@link WebSocketListenerOptions.path}. */
export const DEFAULT_WS_PATH = '/muxtun';

/** A WebSocket accepted at the path: the byte stream over it and who sent it. */
export interface WebSocketConnection {
  /** Stream mode: the socket itself (a net.Socket, TLS runs natively on it). Messages mode: a stream over the messages. */
  stream: Duplex;
  /** The HTTP peer: the reverse proxy's address when there is one. */
  remoteAddress: string;
  remotePort: number;
}

export interface WebSocketListenerOptions {
  host: string;
  /** 0 for any free port. */
  port: number;
  /** The path upgrades are accepted at; anything else gets a 404. */
  path: string;
  /** Time an HTTP connection has to send its request (and upgrade, and in stream mode its frame header), in ms. */
  requestTimeoutMs: number;
  /** Called for each accepted WebSocket; it owns the stream from then on. */
  onConnection: (connection: WebSocketConnection) => void;
  /** Called for a request refused (wrong path, plain HTTP, garbage), for a debug log. */
  onRefused?: (info: { remote: string; why: string }) => void;
}

/**
 * `serve --ws-listen`: plain HTTP meant to sit behind a reverse proxy that
 * terminates the public TLS. A WebSocket upgrade at `path` becomes a byte
 * stream for the tunnel's own TLS, in either mode (a request with
 * `X-Muxtun-Transport: stream` gets stream mode, any other `ws`'s
 * messages); `GET /healthz` answers 200 for load balancers; everything
 * else gets a 404 and the connection is closed.
 */
export class WebSocketListener {
  readonly #options: WebSocketListenerOptions;
  readonly #http: http.Server;
  readonly #ws: WebSocketServer;

  constructor(options: WebSocketListenerOptions) {
    this.#options = options;
    this.#ws = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: WS_MAX_PAYLOAD_BYTES, clientTracking: false });
    this.#http = http.createServer({ requestTimeout: options.requestTimeoutMs, headersTimeout: options.requestTimeoutMs, keepAliveTimeout: 1_000 }, (request, response) => {
      const healthz = request.method === 'GET' && pathOf(request.url) === '/healthz';
      if (!healthz) this.#refused(request.socket, `plain HTTP ${request.method ?? '?'} request`);
      response.writeHead(healthz ? 200 : 404, { 'content-type': 'text/plain', connection: 'close' });
      response.end(healthz ? 'ok\n' : 'not found\n');
    });
    this.#http.on('upgrade', (request: http.IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(request, socket, head));
    // Garbage, oversized headers, timeouts: close, nothing else.
    this.#http.on('clientError', (_error, socket: Socket) => {
      this.#refused(socket, 'not an HTTP request');
      socket.destroy();
    });
  }

  /** Starts listening; rejects with the listen error (EADDRINUSE …). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen({ host: this.#options.host, port: this.#options.port }, () => {
        this.#http.off('error', reject);
        this.#http.on('error', () => undefined);
        resolve(this.#http.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting; resolves once the HTTP side is closed (accepted WebSockets belong to their owners). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#http.close(() => resolve());
      this.#http.closeIdleConnections();
    });
  }

  #onUpgrade(request: http.IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    if (pathOf(request.url) !== this.#options.path || (request.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      this.#refused(socket, `upgrade at ${pathOf(request.url).slice(0, 100)}`);
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const remoteAddress = socket.remoteAddress ?? '?';
    const remotePort = socket.remotePort ?? 0;
    if (wantsStreamMode(request)) {
      void acceptStreamMode(request, socket, head, this.#options.requestTimeoutMs).then((accepted) => {
        if (accepted.ok) this.#options.onConnection({ stream: accepted.socket, remoteAddress, remotePort });
        else this.#options.onRefused?.({ remote: `${remoteAddress}:${remotePort}`, why: accepted.why });
      });
      return;
    }
    this.#ws.handleUpgrade(request, socket, head, (ws) => {
      this.#options.onConnection({ stream: webSocketByteStream(ws, socket, { masked: false }), remoteAddress, remotePort });
    });
  }

  #refused(socket: Socket, why: string): void {
    this.#options.onRefused?.({ remote: `${socket.remoteAddress}:${socket.remotePort}`, why });
  }
}

function pathOf(url: string | undefined): string {
  const text = url ?? '/';
  const query = text.indexOf('?');
  return query < 0 ? text : text.slice(0, query);
}
