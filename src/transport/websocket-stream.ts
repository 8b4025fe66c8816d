import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';

/** Largest WebSocket message a batch of writes becomes (well under the peers' 4 MiB maxPayload). */
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * The byte stream over an open WebSocket, for TLS to run over.
 *
 * `ws`'s stream pauses the socket when its reader is behind and completes
 * a write only once the frame is handed to the socket, so it buffers
 * nothing without bound. Two things are added here:
 *
 * - When the WebSocket closes, `ws`'s stream only ends its readable side and
 *   never emits 'close' (it is made with autoDestroy off): a TLS socket over
 *   it then sees 'end' and waits forever for a close that does not come
 *   (found with a cut link: the server kept the dead link and a resume
 *   stalled). Once the reader has everything, destroy it.
 * - TLS writes its records corked, one chunk per record (16 KiB at most);
 *   `_writev` sends what is queued as one message instead of a frame each.
 */
export function webSocketByteStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws);
  stream.once('end', () => stream.destroy());
  stream._writev = (chunks: Array<{ chunk: unknown }>, callback: (error?: Error | null) => void): void => {
    const messages: Buffer[] = [];
    let group: Buffer[] = [];
    let size = 0;
    for (const { chunk } of chunks) {
      const buffer = chunk as Buffer;
      if (size + buffer.length > MAX_BATCH_BYTES && group.length > 0) {
        messages.push(Buffer.concat(group, size));
        group = [];
        size = 0;
      }
      group.push(buffer);
      size += buffer.length;
    }
    if (group.length > 0) messages.push(group.length === 1 ? group[0]! : Buffer.concat(group, size));
    // As `ws`'s own _write: the callback comes once the last frame is handed to the socket.
    messages.forEach((message, index) => ws.send(message, index === messages.length - 1 ? callback : undefined));
  };
  return stream;
}
