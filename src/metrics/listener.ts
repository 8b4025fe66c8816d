/**
 * The HTTP listener of `--metrics`: `GET /metrics` (and HEAD) in the
 * Prometheus text format, 404 for any other path, 405 for other methods.
 * Bounded like anything else that listens: a few connections at once,
 * requests that must arrive whole within seconds, no request bodies read.
 * Meant for 127.0.0.1 (the default host): it has no authentication.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Scrapers at once; Prometheus uses one, and a person with curl another. */
export const MAX_METRICS_CONNECTIONS = 16;
/** The time a request has to arrive whole, and an idle keep-alive connection to send the next. */
export const METRICS_REQUEST_TIMEOUT_MS = 5_000;

export class MetricsListener {
  readonly #registry: Registry;
  readonly #server: http.Server;

  constructor(registry: Registry) {
    this.#registry = registry;
    this.#server = http.createServer({ requestTimeout: METRICS_REQUEST_TIMEOUT_MS, headersTimeout: METRICS_REQUEST_TIMEOUT_MS, keepAliveTimeout: METRICS_REQUEST_TIMEOUT_MS }, (request, response) => {
      void this.#serve(request, response);
    });
    this.#server.maxConnections = MAX_METRICS_CONNECTIONS;
    // A socket that sends garbage gets a 400 and is closed; nothing is logged per request.
    this.#server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Listens on host:port (0: any free port); resolves with the address, rejects (the listener closed) if it cannot bind. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and ends the connections it has (a scrape in progress is cut off). */
  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    // Any body is not ours to read: drop it rather than buffer it.
    request.resume();
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') return reply(response, 404, 'not found: metrics are at /metrics\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return reply(response, 405, 'method not allowed: use GET\n');
    }
    let body: string;
    try {
      body = await this.#registry.metrics();
    } catch (error) {
      return reply(response, 500, `cannot collect the metrics: ${(error as Error).message}\n`);
    }
    response.writeHead(200, { 'Content-Type': this.#registry.contentType, 'Content-Length': Buffer.byteLength(body) });
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}

function reply(response: http.ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
}
