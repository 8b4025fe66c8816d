import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';

/**
 * The byte stream over an open WebSocket, for TLS to run over.
 *
 * `ws`'s stream pauses the socket when its reader is behind and completes
 * a write only once the frame is handed to the socket, so it buffers
 * nothing without bound. But when the WebSocket closes it only ends the
 * readable side and never emits 'close' (it is made with autoDestroy off):
 * a TLS socket over it then sees 'end' and waits forever for a close that
 * does not come (found with a cut link: the server kept the dead link and
 * a resume stalled). Once the reader has everything, destroy it.
 */
export function webSocketByteStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws);
  stream.once('end', () => stream.destroy());
  return stream;
}
