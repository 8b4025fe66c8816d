import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { TransportError, TransportErrorCode } from './errors.js';
import type { ProxyConfig } from './proxy-url.js';
import { readExactly } from './read-exactly.js';
import { abortError, classifyWebSocketError, shownUrl, upgradeRefused, viaProxy } from './websocket-connection.js';
import { isStreamFrameHeader, STREAM_HEADER_BYTES, streamFrameHeader, webSocketAccept } from './websocket-frame.js';

/**
 * Stream mode, the client's half (the server's is in websocket-stream-accept.ts).
 *
 * Why: TLS over a JavaScript stream (messages mode) costs a copy per
 * encrypted write, a trip through JavaScript per read, and the garbage
 * that follows; only TLS on a native handle avoids it. So after the
 * upgrade each side sends ONE binary frame header with the largest length
 * RFC 6455 allows, and everything after it on the connection is that
 * frame's payload: the TLS bytes, on the socket itself, exactly as raw TLS.
 * It is valid RFC 6455; a proxy that passes the upgraded connection
 * through as bytes (nginx, Caddy, HAProxy) carries it, one that buffers
 * whole messages does not (messages mode is for those).
 *
 * Both sides say they speak it with `X-Muxtun-Transport: stream`, so a
 * server without it (an older muxtun) is named, not fed bytes it would
 * take for garbage.
 */

/** The request and response header that asks for, and agrees to, stream mode (`X-Muxtun-Transport`, as Node lowercases it). */
export const STREAM_MODE_HEADER = 'x-muxtun-transport';
export const STREAM_MODE_VALUE = 'stream';

const USE_MESSAGES = 'use --ws-mode messages';

/**
 * Upgrades an HTTP connection to `url` (through `proxy` when given) to a
 * stream-mode WebSocket and resolves with its socket (a net.Socket, or the
 * TLSSocket of wss://), paused and positioned after the server's frame
 * header, with no listener of ours: `tls.connect({ socket })` runs
 * natively on it.
 *
 * @throws {@link TransportError} `ERR_MUXTUN_WEBSOCKET` (unreachable, refused, no stream mode),
 *   `ERR_MUXTUN_CONNECT_TIMEOUT`, the proxy codes, or `ERR_MUXTUN_TLS_UNTRUSTED` (the wss:// certificate)
 */
export function dialStreamMode(url: URL, proxy: ProxyConfig | undefined, signal: AbortSignal): Promise<Socket> {
  const shown = shownUrl(url);
  const secure = url.protocol === 'wss:';
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    let settled = false;
    let upgraded: Socket | undefined;
    const request = (secure ? https : http).request({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
        'X-Muxtun-Transport': STREAM_MODE_VALUE,
      },
      // A connection of its own, never a pooled one: through the proxy, or
      // from a fresh agent (with `agent: false` Node would ignore createConnection).
      // Node's ClientRequest takes an asynchronous createConnection (the socket
      // comes through the callback); its types only declare the synchronous form.
      ...(proxy ? { createConnection: viaProxy(proxy, secure, signal) as unknown as http.RequestOptions['createConnection'] } : { agent: false }),
    });
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      request.on('error', () => undefined);
      request.destroy();
      upgraded?.on('error', () => undefined);
      upgraded?.destroy();
      reject(error);
    };
    const onAbort = (): void => {
      const error = abortError(signal, shown, proxy);
      // Upgraded but no header: a proxy holding back the endless frame until it "ends" looks like this.
      fail(upgraded ? new TransportError(error.code, `${error.message} (the upgrade went through, the server's stream-mode frame header never came: if a proxy in between buffers whole WebSocket messages, ${USE_MESSAGES})`) : error);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => fail(classifyWebSocketError(error, shown, url.host)));
    request.once('response', (response) => {
      response.resume();
      fail(upgradeRefused(shown, response.statusCode, response.statusMessage));
    });
    request.once('upgrade', (response: http.IncomingMessage, socket: Socket, head: Buffer) => {
      upgraded = socket;
      const refusal = checkUpgrade(response, key, shown);
      if (refusal) return fail(refusal);
      socket.write(streamFrameHeader(true));
      readExactly(socket, STREAM_HEADER_BYTES.server, head, signal).then(
        (header) => {
          if (header === undefined) return fail(new TransportError(TransportErrorCode.WEBSOCKET, `${shown} closed the connection right after the WebSocket upgrade, before stream mode began`));
          if (!isStreamFrameHeader(header, false)) {
            return fail(new TransportError(TransportErrorCode.WEBSOCKET, `${shown} did not start stream mode (its first frame is not the stream-mode header): if a proxy in between re-frames WebSocket messages, ${USE_MESSAGES}`));
          }
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          resolve(socket);
        },
        (error: unknown) => fail(error instanceof Error ? classifyWebSocketError(error, shown, url.host) : error),
      );
    });
    request.end();
  });
}

/** Why a 101 answer is not a stream-mode WebSocket, if it is not. */
function checkUpgrade(response: http.IncomingMessage, key: string, shown: string): TransportError | undefined {
  const refused = (why: string): TransportError => new TransportError(TransportErrorCode.WEBSOCKET, `${shown} ${why}`);
  if (response.statusCode !== 101) return upgradeRefused(shown, response.statusCode, response.statusMessage);
  if ((response.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refused(`answered the upgrade with "Upgrade: ${response.headers.upgrade ?? ''}", not a WebSocket`);
  if (response.headers['sec-websocket-accept'] !== webSocketAccept(key)) return refused('answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept: not a WebSocket server');
  if (response.headers[STREAM_MODE_HEADER] !== STREAM_MODE_VALUE) {
    return refused(`accepted the WebSocket but not stream mode: the server is an older muxtun serve (or not muxtun at all); ${USE_MESSAGES}, or upgrade the server`);
  }
  return undefined;
}
