import type { Duplex } from 'node:stream';
import { encodeWndInc } from './frame.js';

type Callback = (error?: Error | null) => void;

/** A stream as the writer sees it. */
export interface FrameSource {
  readonly id: number;
  _pullFrame(out: Buffer[], done: Callback[]): number;
  _hasSendable(): boolean;
  _takeWindowUpdate(): number;
}

// How many bytes one flush hands to the transport in one corked batch:
// large enough for big writev/TLS records, small enough to yield to reads.
const BATCH_BYTES = 256 * 1024;
// A batch up to this size is copied into one buffer and written in one call.
const SMALL_BATCH_BYTES = 16 * 1024;

/**
 * The session's writer. Control frames (RST, WNDINC, GOAWAY, SYN, heartbeat)
 * go ahead of queued data; streams with data take turns one frame at a time,
 * so one busy or stalled stream never holds up another. Each flush writes a
 * batch (a small one as one buffer, a large one corked), then waits for
 * `'drain'` if the transport is backed up: the socket's backpressure bounds
 * what we queue.
 */
export class Outbound {
  readonly #transport: Duplex;
  readonly #maxControlBytes: number;
  readonly #onOverflow: (queuedBytes: number) => void;
  #control: Buffer[] = [];
  #controlBytes = 0;
  #ready: FrameSource[] = [];
  #readyHead = 0;
  readonly #queued = new Set<FrameSource>();
  readonly #windowUpdates = new Set<FrameSource>();
  #scheduled = false;
  #waitingDrain = false;
  #closed = false;

  constructor(transport: Duplex, maxControlBytes: number, onOverflow: (queuedBytes: number) => void) {
    this.#transport = transport;
    this.#maxControlBytes = maxControlBytes;
    this.#onOverflow = onOverflow;
  }

  /** Queues a control frame ahead of all data. */
  control(frame: Buffer): void {
    if (this.#closed) return;
    this.#control.push(frame);
    this.#controlBytes += frame.length;
    if (this.#controlBytes > this.#maxControlBytes) {
      // The peer makes us answer faster than it reads: it cannot be kept up with.
      this.#onOverflow(this.#controlBytes);
      return;
    }
    this.#schedule();
  }

  /** The source has data or a FIN to send. */
  ready(source: FrameSource): void {
    if (this.#closed) return;
    if (!this.#queued.has(source)) {
      this.#queued.add(source);
      this.#ready.push(source);
    }
    this.#schedule();
  }

  /** The source has receive window to return; coalesced into one WNDINC per flush. */
  windowUpdate(source: FrameSource): void {
    if (this.#closed) return;
    this.#windowUpdates.add(source);
    this.#schedule();
  }

  /** Writes the queued control frames now (GOAWAY before closing) and stops. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#control.length > 0 && this.#transport.writable && !this.#transport.destroyed) {
      this.#writeBatch(this.#control);
    }
    this.#control = [];
    this.#ready = [];
    this.#queued.clear();
    this.#windowUpdates.clear();
  }

  #schedule(): void {
    if (this.#scheduled || this.#waitingDrain) return;
    this.#scheduled = true;
    // setImmediate, not nextTick: everything queued by the I/O callbacks of
    // one loop turn goes out in one batch.
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#closed || this.#waitingDrain) return;
    const transport = this.#transport;
    if (!transport.writable || transport.destroyed) return;
    const out: Buffer[] = [];
    const done: Callback[] = [];
    let bytes = 0;

    for (const source of this.#windowUpdates) {
      const increment = source._takeWindowUpdate();
      if (increment > 0) {
        out.push(encodeWndInc(source.id, increment));
        bytes += 12;
      }
    }
    this.#windowUpdates.clear();
    for (const frame of this.#control) out.push(frame);
    bytes += this.#controlBytes;
    this.#control = [];
    this.#controlBytes = 0;

    const ready = this.#ready;
    while (bytes < BATCH_BYTES && this.#readyHead < ready.length) {
      const source = ready[this.#readyHead++]!;
      this.#queued.delete(source);
      bytes += source._pullFrame(out, done);
      if (source._hasSendable() && !this.#queued.has(source)) {
        this.#queued.add(source);
        ready.push(source);
      }
    }
    if (this.#readyHead === ready.length) {
      ready.length = 0;
      this.#readyHead = 0;
    } else if (this.#readyHead > 1024) {
      this.#ready = ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }

    if (out.length > 0) this.#writeBatch(out, done, bytes);

    if (transport.writableNeedDrain) {
      this.#waitingDrain = true;
      transport.once('drain', this.#onDrain);
    } else if (this.#readyHead < this.#ready.length || this.#control.length > 0 || this.#windowUpdates.size > 0) {
      this.#schedule();
    }
  };

  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    this.#schedule();
  };

  /**
   * Writes frames in one batch: copied into one buffer when they come to at
   * most SMALL_BATCH_BYTES (`bytes`), else corked. `done` (the streams'
   * write callbacks) runs once the transport has flushed the batch, not when
   * write() returns: in a large batch DATA payloads are the application's
   * buffers, written without copying, and Node lets a writer reuse its
   * buffer once the callback has run. A transport that is backed up still
   * holds them until then.
   */
  #writeBatch(frames: Buffer[], done: Callback[] = [], bytes = Infinity): void {
    const transport = this.#transport;
    const onFlushed = done.length > 0 ? () => done.forEach((callback) => callback()) : undefined;
    if (frames.length > 1 && bytes <= SMALL_BATCH_BYTES) {
      // One buffer, one write(): no cork, no writev. TLS copies the buffers
      // of a writev into one anyway; for a small batch the copy here costs
      // less than the stream machinery of a corked multi-buffer write.
      transport.write(Buffer.concat(frames), onFlushed);
      return;
    }
    transport.cork();
    const last = frames.length - 1;
    for (let i = 0; i < last; i++) transport.write(frames[i]);
    // A failed transport ends the session, which fails the streams; their
    // write callbacks still run, without an error, as net.Socket's do.
    transport.write(frames[last], onFlushed);
    transport.uncork();
  }
}
