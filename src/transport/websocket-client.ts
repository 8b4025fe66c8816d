import type { Duplex } from 'node:stream';
import WebSocket, { type ClientOptions } from 'ws';
import { webSocketByteStream } from './websocket-stream.js';
import type { Socket } from 'node:net';
import { abortError, classifyWebSocketError, shownUrl, upgradeRefused, viaProxy } from './websocket-connection.js';
import type { WebSocketMode } from './endpoint.js';
import type { ProxyConfig } from './proxy-url.js';
import { WS_MAX_PAYLOAD_BYTES } from './websocket-limits.js';
import { dialStreamMode } from './websocket-stream-mode.js';

/**
 * Opens a WebSocket to `url` (ws:// or wss://, the latter checked against the
 * system CAs and `NODE_EXTRA_CA_CERTS` like any HTTPS client), through
 * `proxy` when given, and resolves with the byte stream the tunnel's TLS
 * runs over: in stream mode the socket itself, in messages mode a stream
 * over the messages.
 *
 * @throws {@link TransportError} `ERR_MUXTUN_WEBSOCKET` (unreachable, upgrade refused,
 *   a server without stream mode), `ERR_MUXTUN_CONNECT_TIMEOUT`, the proxy codes, or
 *   {@link MuxtunTlsError} `ERR_MUXTUN_TLS_UNTRUSTED` (the wss:// certificate)
 */
export function dialWebSocket(url: URL, proxy: ProxyConfig | undefined, signal: AbortSignal, mode: WebSocketMode = 'stream'): Promise<Duplex> {
  return mode === 'stream' ? dialStreamMode(url, proxy, signal) : dialMessages(url, proxy, signal);
}

/**
 * Messages mode, with `ws`: binary messages carry the bytes, `ws` pauses
 * the socket when the stream's reader is behind, and a write completes
 * only once its frame is handed to the socket, so neither direction
 * buffers without bound.
 */
function dialMessages(url: URL, proxy: ProxyConfig | undefined, signal: AbortSignal): Promise<Duplex> {
  const shown = shownUrl(url);
  const secure = url.protocol === 'wss:';
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: WS_MAX_PAYLOAD_BYTES,
      followRedirects: false,
      // An all-zero mask: ws then skips masking here and unmasking at the
      // server (a pass over every byte each side). Masking keeps a
      // browser script from choosing the bytes a proxy sees (RFC 6455 10.3);
      // ours are TLS records, which no one outside the two ends chooses.
      generateMask: zeroMask,
      // Node's ClientRequest takes an asynchronous createConnection (the socket
      // comes through the callback); @types/ws only declares the synchronous form.
      ...(proxy ? { createConnection: viaProxy(proxy, secure, signal) as unknown as ClientOptions['createConnection'] } : {}),
    });
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(error);
    };
    const onAbort = (): void => fail(abortError(signal, shown, proxy));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    ws.once('unexpected-response', (_request, response) => {
      response.resume();
      fail(upgradeRefused(shown, response.statusCode, response.statusMessage));
    });
    ws.on('error', (error) => fail(classifyWebSocketError(error, shown, url.host)));
    // The socket the WebSocket runs on (TLS for wss://), for the stream to cork.
    let socket: Socket | undefined;
    ws.once('upgrade', (response) => (socket = response.socket));
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      resolve(webSocketByteStream(ws, socket!, { masked: true }));
    });
  });
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
