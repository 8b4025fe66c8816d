import type { Socket } from 'node:net';

/**
 * Writes to a forwarded connection's socket, coalesced per event-loop turn:
 * a socket is corked at its first write of the turn and uncorked, with every
 * other socket written in that turn, from one `setImmediate` (after the
 * turn's reads, before the next poll), so the turn's chunks leave in one
 * `writev`.
 *
 * Why: a stream hands on its bytes as the decoder cuts them, and a DATA
 * frame rarely fits a TLS record, so the writes averaged ~7 KiB, one system
 * call each. Coalesced, bulk transfers made half the system calls per GB and
 * used ~0.8x the CPU (docs/benchmarks.md).
 *
 * Backpressure: while the turn's batch is gathered, `write()` returning false
 * only means it passed the high-water mark; what counts is whether the
 * kernel took the last batch. Returns false (pause and wait for 'drain',
 * which then comes) when the socket still held bytes from an earlier turn,
 * or holds more than MAX_BATCH_BYTES: what one turn brings is bounded by the
 * session's read budget anyway.
 */
export function writeInTurn(socket: Socket, chunk: Buffer): boolean {
  let backedUp = false;
  if (socket.writableCorked === 0) {
    backedUp = socket.writableLength > 0;
    socket.cork();
    corked.push(socket);
    if (!scheduled) {
      scheduled = true;
      setImmediate(uncorkAll);
    }
  }
  if (socket.write(chunk)) return true;
  // write() said false, so 'drain' will come: safe to wait for it.
  return !backedUp && socket.writableLength < MAX_BATCH_BYTES;
}

const MAX_BATCH_BYTES = 1024 * 1024;

let corked: Socket[] = [];
let scheduled = false;

function uncorkAll(): void {
  scheduled = false;
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
}
