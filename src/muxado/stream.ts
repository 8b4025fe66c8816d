import { performance } from 'node:perf_hooks';
import { Duplex } from 'node:stream';
import { ErrorCode, HEADER_SIZE, INITIAL_WINDOW, MAX_FRAME_PAYLOAD, MAX_WINDOW } from './constants.js';
import { InvalidArgumentError, StreamResetError } from './errors.js';
import { encodeDataHeader } from './frame.js';
import type { Session } from './session.js';

type Callback = (error?: Error | null) => void;

/** What a stream needs from its session. The session hands each stream one. */
export interface StreamHost {
  /** The stream has DATA or FIN it may send now. */
  scheduleSend(stream: Stream): void;
  /** The stream has receive window to return. */
  scheduleWindowUpdate(stream: Stream): void;
  sendReset(streamId: number, errorCode: number): void;
  /** Asks for more receive window for one stream within the session's budget. */
  reserveWindowGrowth(bytes: number): boolean;
  releaseWindowGrowth(bytes: number): void;
  /** The stream is gone from both sides' point of view: drop it from the table. */
  streamEnded(stream: Stream): void;
  /** The session's smallest round trip in ms, or -1 while none is known. */
  minRtt(): number;
}

export interface StreamInit {
  id: number;
  type: number;
  priority: number;
  /** The receive window's hard cap. */
  maxWindow: number;
  /** Up to here the window grows while the reader keeps up; beyond it only on a long path (see #probeDone). */
  windowFloor: number;
}

// Small payloads are merged into one buffer while queued: a peer sending
// one-byte frames must not make us hold one Buffer object per byte.
const MERGE_BELOW = 2048;
const MERGED_MAX = 16 * 1024;
const MERGE_START = 256;
/** Above the floor a window doubles when grants are used within this many of the session's smallest round trips... */
const GROWTH_RTTS = 2;
/** ...this many times in a row: one window that happens to arrive in a burst must not grow it for good. */
const GROWTH_PROBES = 2;

/**
 * One muxado stream, a `stream.Duplex` that behaves like a `net.Socket`:
 * `end()` sends FIN and reading goes on, `'end'` follows the peer's FIN,
 * `write()` returns false under backpressure (the peer's window or the
 * transport) and `'drain'` follows. A reset ends both directions; the
 * peer's RST arrives as a `StreamResetError` carrying its wire code.
 */
export class Stream extends Duplex {
  readonly id: number;
  /** The stream type from the opener's SYN (0 when it sent none). */
  readonly type: number;
  readonly priority: number;
  readonly session: Session;

  readonly #host: StreamHost;
  readonly #maxWindow: number;
  readonly #windowFloor: number;

  // Receiving. Invariant: #recvWindow + #recvBytes + #unacked === #windowSize.
  #recv: Buffer[] = [];
  #recvBytes = 0;
  // Small payloads waiting to be read are copied into #tail, which grows by
  // doubling up to MERGED_MAX and then joins #recv. Re-concatenating the last
  // chunk for every small frame instead costs O(n^2): a peer sending one-byte
  // frames to a paused reader made us copy ~8 KiB per byte received.
  #tail: Buffer | null = null;
  #tailFill = 0;
  #recvWindow = INITIAL_WINDOW;
  #windowSize = INITIAL_WINDOW;
  #unacked = 0;
  #consumedSinceGrowth = 0;
  // Above the floor: bytes consumed in all, and the probe in flight, if any:
  // the consumed offset at which the bytes our last WNDINC allowed are used
  // up, and when that WNDINC left (-1: no probe).
  #consumedTotal = 0;
  #probeEdge = 0;
  #probeSince = -1;
  #probeWins = 0;
  #remoteFin = false;
  #pushedEof = false;
  #wantRead = false;

  // Sending.
  #sendWindow = INITIAL_WINDOW;
  #out: Buffer[] = [];
  #outHead = 0;
  #outBytes = 0;
  #writeCallback: Callback | null = null;
  #finCallback: Callback | null = null;
  #finSent = false;

  /** An RST was sent or received (or the session ended): no frame goes out for this stream again. */
  #reset = false;
  #idleTimer: NodeJS.Timeout | null = null;

  /** @internal Streams are made by `Session.open()` and the session's accept path. */
  constructor(session: Session, host: StreamHost, init: StreamInit) {
    // A writer may queue up to 256 KiB before write() says wait: a forwarded
    // socket's 64 KiB reads then pause and resume the socket every fourth
    // read instead of every read (two epoll_ctl calls and a 'drain' each).
    // Same-run bench against 64 KiB, three runs: bulk 1.02-1.22x, CPU per GB
    // 0.77-0.87x, system calls 0.71x; ping latencies within their noise.
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 256 * 1024 });
    this.session = session;
    this.#host = host;
    this.id = init.id;
    this.type = init.type;
    this.priority = init.priority;
    this.#maxWindow = init.maxWindow;
    this.#windowFloor = init.windowFloor;
  }

  /** Ends both directions at once with RST(code); unread and unsent data are dropped. */
  reset(code: ErrorCode = ErrorCode.CANCEL): void {
    if (!Number.isInteger(code) || code < 0 || code > ErrorCode.CANCEL) {
      throw new InvalidArgumentError(`reset code must be one of ErrorCode (0 to 7), got ${String(code)}`);
    }
    if (this.destroyed) return;
    this.#sendReset(code);
    this.destroy();
  }

  /** Like `net.Socket#setTimeout`: emits `'timeout'` after `ms` without traffic; 0 turns it off. */
  setTimeout(ms: number, callback?: () => void): this {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (ms > 0) {
      this.#idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.#idleTimer.unref();
      if (callback) this.once('timeout', callback);
    } else if (callback) {
      this.off('timeout', callback);
    }
    return this;
  }

  /** No-op, for code written for `net.Socket` (frames are already written as soon as possible). */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** No-op, for code written for `net.Socket` (the session's heartbeat covers liveness). */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  /**
   * No-op, for code written for `net.Socket` (an http.Agent unrefs its idle
   * keep-alive sockets and refs them on reuse). A stream holds no handle of
   * its own: the session's transport keeps the process alive or not.
   */
  ref(): this {
    return this;
  }

  /** No-op, see `ref()`. */
  unref(): this {
    return this;
  }

  /** Bytes the peer has let us send before it returns window. */
  get sendWindow(): number {
    return this.#sendWindow;
  }

  // ---- Duplex implementation ----

  override _read(): void {
    this.#wantRead = true;
    this.#deliver();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.#out.push(chunk);
    this.#outBytes += chunk.length;
    this.#writeCallback = callback;
    this.#host.scheduleSend(this);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: Callback): void {
    for (const { chunk } of chunks) {
      if (chunk.length === 0) continue;
      this.#out.push(chunk);
      this.#outBytes += chunk.length;
    }
    if (this.#outBytes === 0) {
      callback();
      return;
    }
    this.#writeCallback = callback;
    this.#host.scheduleSend(this);
  }

  override _final(callback: Callback): void {
    this.#finCallback = callback;
    this.#host.scheduleSend(this);
  }

  override _destroy(error: Error | null, callback: Callback): void {
    // Ending a stream that is still open in either direction tells the peer,
    // as TCP does with RST when a socket closes with data unread.
    if (!this.#reset && !(this.#finSent && this.#remoteFin)) this.#sendReset(ErrorCode.CANCEL);
    this.#reset = true;
    this.#recv = [];
    this.#recvBytes = 0;
    this.#tail = null;
    this.#tailFill = 0;
    this.#out = [];
    this.#outHead = 0;
    this.#outBytes = 0;
    // The write in flight must still be called back: while one is pending,
    // Writable neither fails the writes queued behind it nor calls end()'s
    // callback, so dropping it would leave every one of them hanging. Like
    // net.Socket, a destroyed stream calls it back without an error; Writable
    // then fails the queued writes with ERR_STREAM_DESTROYED.
    const inFlight = this.#writeCallback;
    this.#writeCallback = null;
    if (inFlight) process.nextTick(inFlight);
    this.#finCallback = null;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#host.releaseWindowGrowth(this.#windowSize - INITIAL_WINDOW);
    this.#windowSize = INITIAL_WINDOW;
    this.#host.streamEnded(this);
    callback(error);
  }

  // ---- called by the session ----

  /** @internal A DATA frame (or a SYN with FIN) arrived for this stream. */
  _onData(data: Buffer, fin: boolean): void {
    if (this.#reset) return;
    if (this.#remoteFin) {
      // The reference's Close() after HalfClose() sends a second empty
      // DATA+FIN: harmless, and common in Go code (docs/muxado.md, the
      // reference peer's quirks). Data after FIN is not.
      if (data.length === 0 && fin) return;
      this.#resetWith(ErrorCode.STREAM_CLOSED, 'the peer sent DATA after FIN');
      return;
    }
    if (data.length > this.#recvWindow) {
      this.#resetWith(ErrorCode.FLOW_CONTROL_ERROR, `the peer sent ${data.length} bytes with ${this.#recvWindow} bytes of window left`);
      return;
    }
    if (data.length > 0) {
      this.#recvWindow -= data.length;
      this.#enqueue(data);
      this.#idleTimer?.refresh();
    }
    if (fin) this.#remoteFin = true;
    if (this.#wantRead) this.#deliver();
  }

  /** @internal */
  _onWindowUpdate(increment: number): void {
    if (this.#reset) return;
    const wasBlocked = this.#sendWindow <= 0;
    this.#sendWindow += increment;
    if (this.#sendWindow > MAX_WINDOW) {
      this.#resetWith(ErrorCode.FLOW_CONTROL_ERROR, `the peer's window increments add up to more than ${MAX_WINDOW}`);
      return;
    }
    if (wasBlocked && this.#outBytes > 0) this.#host.scheduleSend(this);
  }

  /** @internal */
  _onReset(errorCode: number): void {
    if (this.#reset) return;
    this.#reset = true;
    this.destroy(new StreamResetError(errorCode, true));
  }

  /** @internal The session ended or refused this stream; nothing more goes on the wire for it. */
  _abort(error: Error): void {
    this.#reset = true;
    // Both directions already ended on the wire: the stream is complete and
    // needs nothing more from the session, so it lost nothing and must not
    // error. Nor is it destroyed: what the reader has not taken yet is good
    // data, so it drains, ends cleanly and closes as usual.
    if (this.#remoteFin && this.#finSent) return;
    this.destroy(error);
  }

  /** @internal */
  _hasSendable(): boolean {
    if (this.#reset) return false;
    if (this.#outBytes > 0) return this.#sendWindow > 0;
    return this.#finCallback !== null && !this.#finSent;
  }

  /**
   * @internal Appends at most one frame (header, then payload views without
   * copying) to `out`; completed write callbacks go to `done`, to be called
   * once the bytes are handed to the transport. Returns the bytes appended.
   */
  _pullFrame(out: Buffer[], done: Callback[]): number {
    if (this.#reset) return 0;
    if (this.#outBytes > 0) {
      if (this.#sendWindow <= 0) return 0;
      const length = Math.min(this.#outBytes, this.#sendWindow, MAX_FRAME_PAYLOAD);
      out.push(encodeDataHeader(this.id, length, false));
      let need = length;
      while (need > 0) {
        const head = this.#out[this.#outHead]!;
        if (head.length <= need) {
          out.push(head);
          this.#outHead++;
          need -= head.length;
        } else {
          out.push(head.subarray(0, need));
          this.#out[this.#outHead] = head.subarray(need);
          need = 0;
        }
      }
      if (this.#outHead === this.#out.length) {
        this.#out.length = 0;
        this.#outHead = 0;
      }
      this.#sendWindow -= length;
      this.#outBytes -= length;
      this.#idleTimer?.refresh();
      if (this.#outBytes === 0 && this.#writeCallback) {
        done.push(this.#writeCallback);
        this.#writeCallback = null;
      }
      return HEADER_SIZE + length;
    }
    if (this.#finCallback !== null && !this.#finSent) {
      out.push(encodeDataHeader(this.id, 0, true));
      this.#finSent = true;
      done.push(this.#finCallback);
      this.#finCallback = null;
      return HEADER_SIZE;
    }
    return 0;
  }

  /** @internal Takes the window to return in a WNDINC (0: nothing to send). */
  _takeWindowUpdate(): number {
    if (this.#reset || this.#remoteFin) {
      // The peer sends nothing more: returning window would be noise.
      this.#unacked = 0;
      return 0;
    }
    const increment = this.#unacked;
    this.#unacked = 0;
    this.#recvWindow += increment;
    if (increment > 0 && this.#probeSince < 0 && this.#windowSize >= this.#windowFloor && this.#windowSize < this.#maxWindow) {
      // The last byte this grant allows cannot leave the peer before the
      // grant reaches it: the time until it is read spans a round trip.
      this.#probeEdge = this.#consumedTotal + this.#windowSize;
      this.#probeSince = performance.now();
    }
    return increment;
  }

  // ---- private ----

  #enqueue(data: Buffer): void {
    this.#recvBytes += data.length;
    // Merge only what has to wait: a reader that keeps up takes each payload as it comes.
    const waits = !this.#wantRead || this.#recv.length > 0 || this.#tail !== null;
    if (data.length < MERGE_BELOW && waits) {
      const need = this.#tailFill + data.length;
      if (this.#tail !== null && need > this.#tail.length) {
        if (need > MERGED_MAX) {
          this.#sealTail();
        } else {
          const grown = Buffer.allocUnsafe(Math.min(MERGED_MAX, Math.max(need, this.#tail.length * 2)));
          this.#tail.copy(grown, 0, 0, this.#tailFill);
          this.#tail = grown;
        }
      }
      this.#tail ??= Buffer.allocUnsafe(Math.min(MERGED_MAX, Math.max(MERGE_START, data.length * 2)));
      data.copy(this.#tail, this.#tailFill);
      this.#tailFill += data.length;
      return;
    }
    this.#sealTail();
    // A view on a much larger transport chunk: copy so we hold only our bytes.
    this.#recv.push(data.length * 2 < data.buffer.byteLength ? Buffer.from(data) : data);
  }

  #sealTail(): void {
    if (this.#tail === null) return;
    this.#recv.push(this.#tail.subarray(0, this.#tailFill));
    this.#tail = null;
    this.#tailFill = 0;
  }

  #deliver(): void {
    if (this.#wantRead) this.#sealTail();
    while (this.#recv.length > 0 && this.#wantRead) {
      const chunk = this.#recv.shift()!;
      this.#recvBytes -= chunk.length;
      // push() returns false once the read buffer is at its high-water mark:
      // the application is not keeping up.
      const keepingUp = this.push(chunk);
      this.#consumed(chunk.length, keepingUp);
      if (!keepingUp) this.#wantRead = false;
    }
    if (this.#recv.length === 0 && this.#tail === null && this.#remoteFin && !this.#pushedEof && !this.destroyed) {
      this.#pushedEof = true;
      this.push(null);
    }
  }

  /**
   * Bytes moved to the reader: return them as window, and grow the window
   * while the reader keeps up. Growth needs `keepingUp`: bytes that merely
   * fill the read buffer of an application that reads nothing must not buy
   * the peer a larger window (it would have us buffer window + growth + the
   * read buffer for a reader that is stalled).
   */
  #consumed(bytes: number, keepingUp: boolean): void {
    this.#unacked += bytes;
    this.#consumedSinceGrowth += bytes;
    this.#consumedTotal += bytes;
    if (this.#windowSize < this.#windowFloor) {
      // Up to the floor: double each time a full window was consumed.
      if (keepingUp && this.#consumedSinceGrowth >= this.#windowSize) {
        this.#grow(this.#windowFloor);
        this.#consumedSinceGrowth = 0;
      }
    } else if (!keepingUp) {
      // The reader, not the path, holds the sender back: start over.
      this.#probeSince = -1;
      this.#probeWins = 0;
    } else if (this.#probeSince >= 0 && this.#consumedTotal >= this.#probeEdge) {
      this.#probeDone();
    }
    // Batched, a quarter window at a time: with the window kept small for
    // latency, waiting for half of it left the sender idle while the WNDINC
    // queued behind a busy event loop (bulk fell ~15 % at 256 KiB).
    if (this.#unacked >= this.#windowSize >>> 2) this.#host.scheduleWindowUpdate(this);
  }

  /**
   * The bytes a grant allowed have all been read. Above the floor a window
   * caps the stream at window / round trip, but every byte in flight is one
   * an interactive frame waits behind: so double only if grants were used
   * within GROWTH_RTTS of the session's smallest heartbeat round trip,
   * GROWTH_PROBES times in a row. Then the window, not a queue, held the
   * sender back on a long path (on loopback the smallest round trip is
   * ~0.2 ms and a window under load takes ms). Not the last round trip:
   * under load it includes the queues in both event loops, and growing on it
   * would grow the queue a ping waits behind. Timed from the grant rather
   * than over bytes read (quic-go's maybeAdjustWindowSize): a reader that
   * takes half a window from the socket in one loop turn reads it fast
   * whatever the path.
   */
  #probeDone(): void {
    const used = performance.now() - this.#probeSince;
    this.#probeSince = -1;
    const minRtt = this.#host.minRtt();
    this.#probeWins = minRtt > 0 && used < GROWTH_RTTS * minRtt ? this.#probeWins + 1 : 0;
    if (this.#probeWins >= GROWTH_PROBES) {
      this.#probeWins = 0;
      this.#grow(this.#maxWindow);
    }
  }

  /** Doubles the window, up to `limit`, within the session's budget; the growth goes out with the next WNDINC. */
  #grow(limit: number): void {
    const growth = Math.min(this.#windowSize, limit - this.#windowSize);
    if (growth > 0 && this.#host.reserveWindowGrowth(growth)) {
      this.#windowSize += growth;
      this.#unacked += growth;
    }
  }

  #sendReset(code: number): void {
    if (this.#reset) return;
    this.#reset = true;
    this.#host.sendReset(this.id, code);
  }

  #resetWith(code: number, detail: string): void {
    this.#sendReset(code);
    this.destroy(new StreamResetError(code, false, detail));
  }
}
