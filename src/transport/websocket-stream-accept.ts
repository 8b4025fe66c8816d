import type http from 'node:http';
import type { Socket } from 'node:net';
import { readExactly } from './read-exactly.js';
import { isStreamFrameHeader, isWebSocketKey, STREAM_HEADER_BYTES, streamFrameHeader, webSocketAccept } from './websocket-frame.js';
import { STREAM_MODE_HEADER, STREAM_MODE_VALUE } from './websocket-stream-mode.js';

/** Stream mode, the server's half (why: see websocket-stream-mode.ts). */

/** True when an upgrade request asks for stream mode; the others are messages mode, for `ws`. */
export function wantsStreamMode(request: http.IncomingMessage): boolean {
  return request.headers[STREAM_MODE_HEADER] === STREAM_MODE_VALUE;
}

export type StreamAccept = { ok: true; socket: Socket } | { ok: false; why: string };

/**
 * Accepts a stream-mode upgrade: answers 101 (agreeing to stream mode)
 * together with our frame header, then reads the client's header within
 * `timeoutMs`. Resolves with the socket, paused after that header with
 * the rest of its bytes unshifted (a TLSSocket made on it takes them), or
 * with why it was refused, the socket then closed (400 for a request that
 * is not a valid WebSocket one).
 */
export async function acceptStreamMode(request: http.IncomingMessage, socket: Socket, head: Buffer, timeoutMs: number): Promise<StreamAccept> {
  const key = request.headers['sec-websocket-key'];
  if (!isWebSocketKey(key) || request.headers['sec-websocket-version'] !== '13') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return { ok: false, why: 'stream-mode upgrade without a valid Sec-WebSocket-Key and version 13' };
  }
  // One write: the client's TLS starts as soon as it has both.
  socket.write(
    Buffer.concat([
      Buffer.from(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${webSocketAccept(key)}\r\nX-Muxtun-Transport: ${STREAM_MODE_VALUE}\r\n\r\n`,
        'latin1',
      ),
      streamFrameHeader(false),
    ]),
  );
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
  let header: Buffer | undefined;
  try {
    header = await readExactly(socket, STREAM_HEADER_BYTES.client, head, controller.signal);
  } catch (error) {
    socket.destroy();
    return { ok: false, why: controller.signal.aborted ? `no stream-mode frame header within ${timeoutMs} ms` : `stream-mode upgrade failed: ${(error as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
  if (header === undefined) {
    socket.destroy();
    return { ok: false, why: 'closed before its stream-mode frame header' };
  }
  if (!isStreamFrameHeader(header, true)) {
    socket.destroy();
    return { ok: false, why: `not the stream-mode frame header (${header.toString('hex')})` };
  }
  // The HTTP server's sockets allow half-open connections, and a TLSSocket
  // takes that from the socket it wraps: as on the TLS port (whose sockets
  // do not), the peer's TLS end then ends ours and the socket closes.
  socket.allowHalfOpen = false;
  return { ok: true, socket };
}
