import type { Socket } from 'node:net';
import { ErrorCode, type Stream } from '../muxado/index.js';
import { ByteMeter, connEnded, connOpened, endResult, type TrafficRoute } from './tunnel-stats.js';
import { writeInTurn } from './turn-writes.js';

export interface BridgeEnd {
  /** Bytes from the TCP socket into the stream. */
  bytesUp: number;
  /** Bytes from the stream into the TCP socket. */
  bytesDown: number;
  /** Why it ended abnormally: a reset on either side, a socket error. */
  error?: Error;
}

/**
 * Pipes a TCP socket and a muxado stream both ways, preserving half-close
 * (TCP FIN <-> muxado FIN) and aborts (TCP RST <-> muxado RST). Both sockets
 * must be created with `allowHalfOpen: true` so one direction can end while
 * the other goes on. With a `route`, the connection counts there (see
 * tunnel-stats.ts) from now until it ends: its bytes are the chunks passed
 * through here, so what went on the socket before (a SOCKS reply) is not.
 */
export function bridge(socket: Socket, stream: Stream, onEnd?: (end: BridgeEnd) => void, route?: TrafficRoute): void {
  let error: Error | undefined;
  let closed = 0;
  const meter = new ByteMeter();
  if (route) connOpened(route, meter);
  const finish = (): void => {
    if (++closed < 2) return;
    if (route) connEnded(route, meter, endResult(error));
    onEnd?.({ bytesUp: socket.bytesRead, bytesDown: socket.bytesWritten, ...(error ? { error } : {}) });
  };

  // What pipe() does both ways, in one closure context: pipe() costs about
  // nine closures and their listener arrays per direction per connection,
  // the largest part of an idle forwarded connection's memory.
  socket.on('data', (chunk: Buffer) => {
    meter.sentBytes += chunk.length;
    if (!stream.write(chunk)) socket.pause();
  });
  stream.on('drain', () => socket.resume());
  socket.on('end', () => stream.end());
  stream.on('data', (chunk: Buffer) => {
    meter.receivedBytes += chunk.length;
    if (!writeInTurn(socket, chunk)) stream.pause();
  });
  socket.on('drain', () => stream.resume());
  stream.on('end', () => socket.end());

  socket.on('error', (cause: Error) => {
    error ??= cause;
    // The local side aborted (ECONNRESET, EPIPE): abort the stream too.
    if (!stream.destroyed) stream.reset(ErrorCode.CANCEL);
  });
  stream.on('error', (cause: Error) => {
    error ??= cause;
    // The stream was reset or its session ended: answer the TCP peer with RST.
    abortSocket(socket);
  });
  socket.on('close', () => {
    // A socket that closed before both directions ended cannot take the rest.
    if (!stream.destroyed && !(stream.writableFinished && stream.readableEnded)) {
      if (!socket.readableEnded || !socket.writableFinished) stream.reset(ErrorCode.CANCEL);
    }
    finish();
  });
  stream.on('close', () => {
    // Both directions ended cleanly when the socket's FIN is on its way
    // (writableEnded; it may not have finished yet) and the peer's arrived.
    if (!(socket.writableEnded && socket.readableEnded)) abortSocket(socket);
    finish();
  });
}

/**
 * Ends a TCP connection with RST where Node can send one. Node cannot reset a
 * socket whose FIN is in progress (end() called, shutdown pending):
 * resetAndDestroy() then fails with EINVAL and never closes the handle,
 * leaking it and its file descriptor. Such a socket has sent all it had, so
 * it is closed instead.
 */
export function abortSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded && !socket.writableFinished && socket.writableLength === 0) socket.destroy();
  else socket.resetAndDestroy();
}
