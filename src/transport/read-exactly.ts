import type { Socket } from 'node:net';

/**
 * Reads exactly `length` bytes from `socket`, starting with `head` (bytes
 * already read past an HTTP header), for a fixed-size preamble such as
 * stream mode's frame header. Whatever came after them is unshifted back
 * and the socket is left paused, with no listener of ours: the next reader
 * (TLS, which takes bytes already buffered in a wrapped socket) gets them
 * in order.
 *
 * Resolves `undefined` when the socket ends or closes first; rejects with
 * the socket's error, or with `signal.reason` when the signal aborts (the
 * socket is left for the caller to destroy).
 */
export function readExactly(socket: Socket, length: number, head: Buffer, signal: AbortSignal): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    let got = head;
    let settled = false;
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      settle();
    };
    const take = (): boolean => {
      if (got.length < length) return false;
      // Paused before the unshift, so nothing is emitted to no one before the next reader listens.
      socket.pause();
      if (got.length > length) socket.unshift(got.subarray(length));
      const bytes = got.subarray(0, length);
      finish(() => resolve(bytes));
      return true;
    };
    const onData = (chunk: Buffer): void => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      take();
    };
    const onEnd = (): void => finish(() => resolve(undefined));
    const onError = (error: Error): void => finish(() => reject(error));
    const onAbort = (): void => finish(() => reject(signal.reason));
    if (signal.aborted) return onAbort();
    if (take()) return;
    if (socket.destroyed || socket.readableEnded) return onEnd();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.on('data', onData);
  });
}
