import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import { frameHeader } from './websocket-frame.js';

/**
 * Largest WebSocket message a write becomes; longer writes are sent as
 * several messages, each a view of the written bytes (no copy).
 *
 * Why small: the receiving `ws` hands on a message that lies inside one
 * socket read as a view of that read, but copies one that spans two reads
 * into a fresh buffer. Socket reads are up to 64 KiB, so a 64 KiB message
 * nearly always spans two and is copied whole; with 16 KiB at most a quarter
 * are. Those copies, and the concatenation this replaced, fed the
 * transport's extra garbage collection (profiled in docs/benchmarks.md).
 */
export const WS_MESSAGE_BYTES = 16 * 1024;

/**
 * The byte stream over an open WebSocket in messages mode, for TLS to run over.
 *
 * `ws`'s stream pauses the socket when its reader is behind, so reading
 * buffers nothing without bound. Two things are added here:
 *
 * - When the WebSocket closes, `ws`'s stream only ends its readable side and
 *   never emits 'close' (it is made with autoDestroy off): a TLS socket over
 *   it then sees 'end' and waits forever for a close that does not come
 *   (found with a cut link: the server kept the dead link and a resume
 *   stalled). Once the reader has everything, destroy it.
 * - Writes: TLS hands over what it has encrypted (up to ~128 KiB, in one to
 *   three chunks) and waits for the write to complete before the next one.
 *   Each chunk leaves as binary frames of at most {@link WS_MESSAGE_BYTES},
 *   written here straight to `socket` (the one `ws` runs on, from the
 *   upgrade), corked so they go out in one system call: going through
 *   `ws.send` per frame cost measurably more CPU in the bench. It is safe
 *   beside `ws`'s own frames (pings, close) because both write whole frames
 *   synchronously, and `ws` queues nothing without compression, which is
 *   off on both ends. The client's frames are masked with an all-zero key,
 *   as `ws` does for us with `generateMask` (see websocket-client.ts). The
 *   write completes, as with `ws`'s own stream, once the last frame is
 *   handed to the socket.
 */
export function webSocketByteStream(ws: WebSocket, socket: Socket, options: { masked: boolean }): Duplex {
  const stream = createWebSocketStream(ws);
  stream.once('end', () => stream.destroy());
  const send = (chunks: readonly Buffer[], callback: (error?: Error | null) => void): void => {
    // Closing or closed: ws.send reports that through the callback, as `ws`'s own stream does.
    if (ws.readyState !== ws.OPEN) return ws.send(Buffer.alloc(0), callback);
    const frames: Buffer[] = [];
    for (const chunk of chunks) {
      for (let offset = 0; offset < chunk.length; offset += WS_MESSAGE_BYTES) frames.push(chunk.subarray(offset, offset + WS_MESSAGE_BYTES));
    }
    if (frames.length === 0) return process.nextTick(callback);
    socket.cork();
    frames.forEach((frame, index) => {
      socket.write(frameHeader(frame.length, options.masked));
      socket.write(frame, index === frames.length - 1 ? callback : undefined);
    });
    socket.uncork();
  };
  stream._write = (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void => send([chunk], callback);
  stream._writev = (chunks: Array<{ chunk: unknown }>, callback: (error?: Error | null) => void): void =>
    send(
      chunks.map(({ chunk }) => chunk as Buffer),
      callback,
    );
  return stream;
}
