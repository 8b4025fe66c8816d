/**
 * A forwarded TCP connection ("conn") that outlives the muxado stream, and
 * so the session and transport, that carries it.
 *
 * `bridge()` pipes one socket to one stream for life; when the session ends,
 * the socket is reset. A `ResumableConn` pipes one socket to a *sequence* of
 * streams: when the session dies, the conn detaches and keeps the socket; a
 * new stream on a new session is attached later and each side re-sends what
 * the other did not receive. Every byte arrives exactly once, in order, and
 * the applications see no reset and no early EOF.
 *
 * ## Byte accounting (each direction is one sequence of absolute offsets)
 *
 * Sending, socket → peer:
 * - `sentBytes`: bytes read from the local socket so far, the offset of the
 *   next one. They were written to the attached stream, if any.
 * - `ackedBytes`: the offset up to which the peer acknowledged receipt (its
 *   `receivedBytes`, told by `ack()` or at `attach()`). Never decreases.
 * - The replay buffer holds exactly the bytes `[ackedBytes, sentBytes)`:
 *   `replayBytes === sentBytes - ackedBytes <= maxReplayBytes`, and it is
 *   part of the session's `ReplayBudget`. At the bound the socket is paused,
 *   so further bytes wait in the kernel (TCP backpressure), never in memory.
 * - FIN is a position in the sequence: when the socket ends (`sentFin`), FIN
 *   sits at offset `sentBytes`, after every byte, and nothing follows it. It
 *   is acknowledged by an ack with `finReceived` (`finAcked`), which requires
 *   `upTo === sentBytes`. Until then it is re-sent after every re-attach.
 *
 * Receiving, peer → socket:
 * - `receivedBytes`: bytes taken from streams and handed to `socket.write()`.
 *   Bytes still buffered in a stream when its session died are not counted:
 *   they are lost with it and the peer re-sends them, for it re-sends from
 *   the `receivedBytes` it is told at resume time.
 * - `finReceived`: the peer's FIN arrived (after all its bytes); the socket's
 *   write side was ended then. The peer may repeat it on a later stream (it
 *   ends every new stream once its side has ended), which is ignored.
 *
 * An acknowledgement therefore says "I have taken bytes up to here (and the
 * FIN)": the sender may forget them, and the receiver will never ask again.
 *
 * ## Lifecycle
 *
 * A conn starts detached: it reads its socket into the replay buffer until
 * `attach()` gives it a stream (the first attach is `{ bytes: 0, fin: false }`).
 * While attached, the socket's bytes go to the stream and into the buffer.
 *
 * - The stream ends with `SessionClosedError` (its session ended): the conn
 *   detaches itself and calls `onDetached`. The integration later calls
 *   `attach()` on a new session or `abort()`; this module never decides.
 * - A real reset while attached (the socket errors, the stream is reset) ends
 *   the conn both ways with RST, as `bridge()` does.
 * - Complete: our FIN acknowledged and the socket closed after both its
 *   directions ended. `onComplete` reports it once; aborted and reset conns
 *   report the same way, with the error.
 *
 * ## Memory
 *
 * An idle conn is a few hundred bytes of fields: no timers (the integration
 * batches acks on its own clock), no closures per conn or per chunk (the
 * listeners are shared functions that find the conn through a symbol on the
 * emitter), hooks shared by all conns of a session through one context.
 */
import type { Socket } from 'node:net';
import { ErrorCode, type Stream } from '../../muxado/index.js';
import { abortSocket } from '../bridge.js';
import { TunnelError, TunnelErrorCode } from '../errors.js';
import { writeInTurn } from '../turn-writes.js';
import { ReplayBudget } from './budget.js';
import { resolveResumeConfig, type ResumeOptions } from './config.js';
import { ReplayQueue } from './replay-queue.js';

/** How a conn ended. */
export type ConnEndReason =
  /** Both directions finished: our FIN acknowledged, the peer's FIN written, the socket closed. */
  | 'complete'
  /** The local socket failed (ECONNRESET...) or closed early; the stream was reset. */
  | 'local-reset'
  /** The stream was reset (by the peer, or by the engine on a protocol fault); the socket was reset. */
  | 'remote-reset'
  /** `abort()` was called. */
  | 'aborted';

/** What `onComplete` reports. */
export interface ConnEnd {
  /** Bytes read from the local socket (`sentBytes`). */
  bytesUp: number;
  /** Bytes written to the local socket (`receivedBytes`). */
  bytesDown: number;
  how: ConnEndReason;
  /** Set unless `how` is `'complete'`. */
  error?: Error;
}

/** What the peer has received of our byte sequence: at resume, or in an ack. */
export interface PeerReceived {
  /** The peer's `receivedBytes`. */
  bytes: number;
  /** The peer's `finReceived`. */
  fin: boolean;
}

/**
 * What a conn tells the integration. One object serves all conns of a
 * session: the conn is passed in, so no closure per conn is needed.
 */
export interface ConnHooks {
  /**
   * New bytes from the peer were handed to the socket (`bytes` > 0), or the
   * peer's FIN was (`bytes` 0, `conn.finReceived` true). Called per stream
   * chunk: batch acks, about every `maxReplayBytes / 4` received per conn
   * or a few ms after the first unacknowledged byte (one session-wide
   * timer), and soon after a FIN. An ack per chunk or per loop turn costs
   * a frame and a syscall each (measured: ~10% more CPU in bulk transfers).
   */
  onReceived?(conn: ResumableConn, bytes: number): void;
  /**
   * The stream died with its session (`SessionClosedError`): the conn is
   * detached, its socket open and paused once the replay buffer is full.
   * Call `attach()` with a new stream, or `abort()`.
   */
  onDetached?(conn: ResumableConn, cause: Error): void;
  /** The conn ended for good: forget it. Called exactly once. */
  onComplete?(conn: ResumableConn, end: ConnEnd): void;
}

/** What the conns of one session share: bounds, the session's budget, hooks. */
export interface ConnContext extends ConnHooks {
  readonly maxReplayBytes: number;
  readonly budget: ReplayBudget;
}

/** A context for the conns of one session: validates `options` once and makes its budget. */
export function createConnContext(options?: ResumeOptions, hooks: ConnHooks = {}): ConnContext {
  const config = resolveResumeConfig(options);
  return { ...hooks, maxReplayBytes: config.maxReplayBytes, budget: new ReplayBudget(config.maxSessionReplayBytes) };
}

let totalReplay = 0;

/** Replay bytes held by every conn of the process: for memory tests and statistics. */
export function totalReplayBytes(): number {
  return totalReplay;
}

// Why the socket is paused; it reads again when no reason is left.
const PAUSE_STREAM = 1; // the attached stream asked to wait for 'drain'
const PAUSE_FULL = 2; // the replay buffer is at maxReplayBytes
const PAUSE_BUDGET = 4; // waiting in the session budget's queue

const kConn = Symbol('muxtun.resumableConn');
type Tagged = { [kConn]?: ResumableConn | undefined };
const ignoreError = (): void => {};

const SESSION_CLOSED = 'ERR_MUXADO_SESSION_CLOSED';

function protocolError(message: string): TunnelError {
  return new TunnelError(TunnelErrorCode.PROTOCOL, message);
}

/** One forwarded TCP connection carried by a sequence of muxado streams. See the file header. */
export class ResumableConn {
  /** Allocated by the integration: odd when the client opened the conn, even when the server did. */
  readonly id: number;
  readonly #socket: Socket;
  readonly #ctx: ConnContext;
  #stream: Stream | null = null;

  // Sending. Invariant while not done: #replay.bytes === #sent - #acked.
  readonly #replay = new ReplayQueue();
  #sent = 0;
  #acked = 0;
  /** Budget room held: #replay.bytes plus room granted by a wake-up not used yet. */
  #reserved = 0;
  #pause = 0;
  #sentFin = false;
  #finAcked = false;

  // Receiving.
  #received = 0;
  #finReceived = false;
  #reportedBytes = 0;
  #reportedFin = false;

  /** The socket closed after both its directions ended. */
  #socketDone = false;
  #done = false;

  /**
   * Takes over `socket` (created or accepted with `allowHalfOpen: true`) and
   * starts reading it into the replay buffer; nothing is sent until `attach()`.
   */
  constructor(id: number, socket: Socket, context: ConnContext) {
    if (!Number.isSafeInteger(id) || id < 0) throw new TypeError(`conn id must be a non-negative integer, got ${String(id)}`);
    this.id = id;
    this.#socket = socket;
    this.#ctx = context;
    (socket as Tagged)[kConn] = this;
    socket.on('data', ResumableConn.#onSocketData);
    socket.on('end', ResumableConn.#onSocketEnd);
    socket.on('drain', ResumableConn.#onSocketDrain);
    socket.on('error', ResumableConn.#onSocketError);
    socket.on('close', ResumableConn.#onSocketClose);
    socket.resume();
    // A socket that already ended or closed before we listened.
    if (socket.readableEnded) this.#socketEnd();
    if (socket.destroyed) {
      process.nextTick(() => {
        if (!this.#done) this.#socketClosed();
      });
    }
  }

  /** Offset of the next byte read from the socket (bytes read so far). */
  get sentBytes(): number {
    return this.#sent;
  }

  /** Offset up to which the peer acknowledged our bytes. */
  get ackedBytes(): number {
    return this.#acked;
  }

  /** Bytes held for replay now: `sentBytes - ackedBytes`. */
  get replayBytes(): number {
    return this.#replay.bytes;
  }

  /** The socket ended: our FIN is in the sequence, at `sentBytes`. */
  get sentFin(): boolean {
    return this.#sentFin;
  }

  /** The peer acknowledged our FIN. */
  get finAcked(): boolean {
    return this.#finAcked;
  }

  /** Bytes received from the peer and handed to the socket. */
  get receivedBytes(): number {
    return this.#received;
  }

  /** The peer's FIN arrived and the socket's write side was ended. */
  get finReceived(): boolean {
    return this.#finReceived;
  }

  /** A stream is attached now. */
  get attached(): boolean {
    return this.#stream !== null;
  }

  /** The conn ended (`onComplete` was called). */
  get done(): boolean {
    return this.#done;
  }

  /** The socket is paused by this conn: the peer, the replay bound or the session budget holds it back. */
  get socketPaused(): boolean {
    return this.#pause !== 0;
  }

  /** `receivedBytes` as of the last `takeAck()`: what the peer was last told. */
  get reportedBytes(): number {
    return this.#reportedBytes;
  }

  /**
   * What to acknowledge to the peer now: `receivedBytes` and `finReceived`
   * if either changed since the last call, else null. The integration sends
   * it on the control stream; a call marks it as sent.
   */
  takeAck(): PeerReceived | null {
    if (this.#received === this.#reportedBytes && this.#finReceived === this.#reportedFin) return null;
    this.#reportedBytes = this.#received;
    this.#reportedFin = this.#finReceived;
    return { bytes: this.#received, fin: this.#finReceived };
  }

  /**
   * The peer has received our bytes up to `upTo` (and our FIN if
   * `finReceived`): drops them from the replay buffer. Smaller values than
   * an earlier ack are stale and ignored. Throws a TunnelError
   * (ERR_MUXTUN_PROTOCOL) for an ack of bytes never sent, or of a FIN not
   * sent or not at `sentBytes`: the peer is broken, end the session.
   * Ignored once the conn is done.
   */
  ack(upTo: number, finReceived: boolean): void {
    if (this.#done) return;
    this.#checkPeer(upTo, finReceived, 'acknowledged');
    if (upTo > this.#acked) this.#dropAcked(upTo - this.#acked);
    if (finReceived && !this.#finAcked) {
      this.#finAcked = true;
      this.#maybeComplete();
    }
  }

  /**
   * Carries the conn on `stream` from now on. `peer` is what the peer has
   * received (`{ bytes: 0, fin: false }` the first time): it acknowledges
   * those bytes, then everything after them is re-sent from the replay
   * buffer, then FIN if the socket ended, then live data. Bytes arriving on
   * `stream` continue at `receivedBytes`: the peer must re-send from the
   * `receivedBytes` it was told, and `stream` must be positioned at them
   * (any header of the integration's already read).
   *
   * A stream still attached is detached first. Throws a TunnelError
   * (ERR_MUXTUN_PROTOCOL) when `peer` contradicts what was acknowledged or
   * sent: below `ackedBytes`, above `sentBytes`, or a FIN not sent.
   * A stream that is already destroyed is treated as if it had just died:
   * reset if it was reset, else the conn stays detached and `onDetached`
   * is called (synchronously).
   */
  attach(stream: Stream, peer: PeerReceived): void {
    if (this.#done) throw new TunnelError(TunnelErrorCode.SESSION_LOST, `conn ${this.id} has ended and cannot be attached`);
    this.#checkPeer(peer.bytes, peer.fin, 'received');
    if (peer.bytes < this.#acked) {
      throw protocolError(`conn ${this.id}: the peer says it received ${peer.bytes} bytes, but it acknowledged ${this.#acked}`);
    }
    this.detach();
    this.ack(peer.bytes, peer.fin);
    if (this.#done) {
      // Everything was already through: the stream only needs closing.
      stream.on('error', ignoreError);
      if (!stream.destroyed) {
        stream.end();
        stream.resume();
      }
      return;
    }
    if (stream.destroyed) {
      // Its 'error', if any, may have been emitted already: judge by what it
      // died of. A reset ends the conn; anything else (its session ended, or
      // it was closed without a reason) leaves the conn detached.
      stream.on('error', ignoreError);
      const cause = stream.errored ?? new TunnelError(TunnelErrorCode.SESSION_LOST, `conn ${this.id}: the stream was closed before it was attached`);
      if (stream.errored && (cause as { code?: unknown }).code !== SESSION_CLOSED) this.#streamFailed(cause);
      else this.#ctx.onDetached?.(this, cause);
      return;
    }

    this.#stream = stream;
    (stream as unknown as Tagged)[kConn] = this;
    stream.on('data', ResumableConn.#onStreamData);
    stream.on('end', ResumableConn.#onStreamEnd);
    stream.on('drain', ResumableConn.#onStreamDrain);
    stream.on('error', ResumableConn.#onStreamError);
    stream.on('close', ResumableConn.#onStreamClose);
    // Flowing unless the socket is backed up: whoever read a header from the
    // stream may have left it paused, or ended (the peer sent FIN right away).
    if (this.#socket.writableNeedDrain) stream.pause();
    else stream.resume();
    if (stream.readableEnded) this.#streamEnd();

    const flowing = this.#replay.writeTo(stream);
    // Our FIN goes out again even if the peer has it: it also ends this
    // stream, which the peer ignores as a FIN (it has one) but which lets
    // the stream close once both sides are done.
    if (this.#sentFin) stream.end();
    if (!flowing) this.#setPause(PAUSE_STREAM);
  }

  /**
   * Stops using the stream (its session died) and keeps the socket open,
   * reading it into the replay buffer up to the bound. A no-op when no
   * stream is attached. Call it when the session ends, for every conn: a
   * conn whose stream already closed cleanly (both FINs sent, waiting for
   * an ack) hears nothing from the session. A stream that is still open is
   * destroyed, which sends RST if its session is still up: the peer then
   * ends its side as reset.
   */
  detach(): void {
    const stream = this.#stream;
    if (stream === null) return;
    this.#dropStream();
    if (!stream.destroyed) stream.destroy();
  }

  /**
   * Ends the conn for good: resets the local socket (RST) and the stream if
   * one is attached, frees the replay buffer, and reports `'aborted'` with
   * `reason`. For a grace period that expired, a conn the peer no longer
   * knows, a session that cannot be resumed. A no-op once done.
   */
  abort(reason?: Error): void {
    if (this.#done) return;
    const stream = this.#stream;
    if (stream && !stream.destroyed) stream.reset(ErrorCode.CANCEL);
    abortSocket(this.#socket);
    this.#finish('aborted', reason ?? new TunnelError(TunnelErrorCode.SESSION_LOST, `conn ${this.id} was aborted`));
  }

  // ---- socket → peer ----

  /** Throws unless the peer could have received `bytes` (and `fin`) of what we sent. */
  #checkPeer(bytes: number, fin: boolean, verb: string): void {
    const sent = this.sentBytes;
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > sent) {
      throw protocolError(`conn ${this.id}: the peer ${verb} ${String(bytes)} bytes of the ${sent} sent`);
    }
    if (fin && !this.#sentFin) throw protocolError(`conn ${this.id}: the peer ${verb} a FIN that was not sent`);
    if (fin && bytes !== sent) throw protocolError(`conn ${this.id}: the peer ${verb} the FIN at ${bytes}, but it is at ${sent}`);
  }

  #socketData(chunk: Buffer): void {
    const replay = this.#replay;
    let take = chunk.length;
    const room = this.#ctx.maxReplayBytes - replay.bytes;
    if (take > room) take = room;
    if (take > this.#reserved - replay.bytes) {
      this.#reserved += this.#ctx.budget.take(take - (this.#reserved - replay.bytes));
      if (take > this.#reserved - replay.bytes) take = this.#reserved - replay.bytes;
    }
    if (take < chunk.length) {
      // What does not fit goes back to the socket, which then stops reading
      // once its own small buffer is full: the rest stays in the kernel.
      // Paused first, so that unshift() buffers the rest instead of emitting it.
      if (take === room) {
        this.#setPause(PAUSE_FULL);
      } else if ((this.#pause & PAUSE_BUDGET) === 0) {
        this.#setPause(PAUSE_BUDGET);
        this.#ctx.budget.wait(this, Math.min(room, chunk.length) - take, ResumableConn.#onBudget);
      }
      this.#socket.unshift(chunk.subarray(take));
      if (take === 0) return;
      chunk = chunk.subarray(0, take);
    }
    replay.push(chunk);
    this.#sent += chunk.length;
    totalReplay += chunk.length;
    const stream = this.#stream;
    if (stream !== null && !stream.write(chunk)) this.#setPause(PAUSE_STREAM);
    if (replay.bytes >= this.#ctx.maxReplayBytes) this.#setPause(PAUSE_FULL);
  }

  #socketEnd(): void {
    if (this.#sentFin) return;
    this.#sentFin = true;
    this.#stream?.end();
  }

  #dropAcked(bytes: number): void {
    this.#replay.drop(bytes);
    this.#acked += bytes;
    totalReplay -= bytes;
    const spare = this.#reserved - this.#replay.bytes;
    this.#reserved = this.#replay.bytes;
    if ((this.#pause & PAUSE_FULL) !== 0) this.#clearPause(PAUSE_FULL);
    this.#ctx.budget.release(spare);
  }

  #budgetGranted(granted: number): void {
    if (this.#done) {
      this.#ctx.budget.release(granted);
      return;
    }
    this.#reserved += granted;
    this.#clearPause(PAUSE_BUDGET);
  }

  #setPause(reason: number): void {
    if (this.#pause === 0) this.#socket.pause();
    this.#pause |= reason;
  }

  #clearPause(reason: number): void {
    if ((this.#pause & reason) === 0) return;
    this.#pause &= ~reason;
    if (this.#pause === 0 && !this.#done) this.#socket.resume();
  }

  // ---- peer → socket ----

  #streamData(stream: Stream, chunk: Buffer): void {
    if (this.#finReceived) {
      // Our receivedBytes said the peer's FIN was through: it re-sent past it.
      this.#resetBoth(stream, 'remote-reset', protocolError(`conn ${this.id}: the peer sent data after its FIN`));
      return;
    }
    this.#received += chunk.length;
    if (!writeInTurn(this.#socket, chunk)) stream.pause();
    this.#ctx.onReceived?.(this, chunk.length);
  }

  #streamEnd(): void {
    if (this.#finReceived) return;
    this.#finReceived = true;
    this.#socket.end();
    this.#ctx.onReceived?.(this, 0);
  }

  // ---- endings ----

  #streamFailed(error: Error): void {
    if ((error as { code?: unknown }).code === SESSION_CLOSED) {
      // The session ended, not the conn: keep the socket for the next one.
      this.#dropStream();
      this.#ctx.onDetached?.(this, error);
      return;
    }
    // A real reset: answer the local side with RST too, as bridge() does.
    this.#dropStream();
    abortSocket(this.#socket);
    this.#finish('remote-reset', error);
  }

  #streamClosed(stream: Stream): void {
    if (stream.readableEnded && stream.writableFinished) {
      // Both FINs went through on this stream; acks may still be on their way.
      this.#dropStream();
      this.#maybeComplete();
      return;
    }
    // Destroyed without an error, by someone else: the conn cannot go on.
    this.#resetBoth(stream, 'remote-reset', new TunnelError(TunnelErrorCode.SESSION_LOST, `conn ${this.id}: its stream was destroyed`));
  }

  #socketFailed(error: Error): void {
    // The local side aborted (ECONNRESET, EPIPE): abort the peer's side too.
    const stream = this.#stream;
    if (stream && !stream.destroyed) stream.reset(ErrorCode.CANCEL);
    this.#finish('local-reset', error);
  }

  #socketClosed(): void {
    const socket = this.#socket;
    if (socket.readableEnded && socket.writableFinished) {
      this.#socketDone = true;
      this.#maybeComplete();
      return;
    }
    // Closed before both directions ended, without an error: it cannot take the rest.
    this.#socketFailed(new TunnelError(TunnelErrorCode.SESSION_LOST, `conn ${this.id}: the local socket closed before both directions ended`));
  }

  #resetBoth(stream: Stream, how: ConnEndReason, error: Error): void {
    if (!stream.destroyed) stream.reset(ErrorCode.CANCEL);
    abortSocket(this.#socket);
    this.#finish(how, error);
  }

  #maybeComplete(): void {
    if (!this.#done && this.#finAcked && this.#socketDone) this.#finish('complete');
  }

  /** Unhooks the stream; it keeps a no-op 'error' listener so a late error cannot crash the process. */
  #dropStream(): void {
    const stream = this.#stream;
    if (stream === null) return;
    this.#stream = null;
    (stream as unknown as Tagged)[kConn] = undefined;
    stream.off('data', ResumableConn.#onStreamData);
    stream.off('end', ResumableConn.#onStreamEnd);
    stream.off('drain', ResumableConn.#onStreamDrain);
    stream.off('error', ResumableConn.#onStreamError);
    stream.off('close', ResumableConn.#onStreamClose);
    stream.on('error', ignoreError);
    this.#clearPause(PAUSE_STREAM);
  }

  #finish(how: ConnEndReason, error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    const stream = this.#stream;
    this.#dropStream();
    // Complete with a stream attached (the peer's FIN came on an earlier one):
    // ours is ended, and it closes when the peer ends its side too.
    if (stream && !stream.destroyed) {
      if (!stream.writableEnded) stream.end();
      stream.resume();
    }
    const socket = this.#socket;
    (socket as Tagged)[kConn] = undefined;
    socket.off('data', ResumableConn.#onSocketData);
    socket.off('end', ResumableConn.#onSocketEnd);
    socket.off('drain', ResumableConn.#onSocketDrain);
    socket.off('error', ResumableConn.#onSocketError);
    socket.off('close', ResumableConn.#onSocketClose);
    socket.on('error', ignoreError);

    const budget = this.#ctx.budget;
    if ((this.#pause & PAUSE_BUDGET) !== 0) budget.cancel(this);
    this.#pause = 0;
    totalReplay -= this.#replay.bytes;
    this.#replay.clear();
    budget.release(this.#reserved);
    this.#reserved = 0;

    const end: ConnEnd = { bytesUp: this.#sent, bytesDown: this.#received, how };
    if (error) end.error = error;
    this.#ctx.onComplete?.(this, end);
  }

  // ---- listeners, shared by every conn: `this` is the emitter ----

  static readonly #onSocketData = function (this: Tagged, chunk: Buffer): void {
    const conn = this[kConn];
    if (conn) conn.#socketData(chunk);
  };

  static readonly #onSocketEnd = function (this: Tagged): void {
    const conn = this[kConn];
    if (conn) conn.#socketEnd();
  };

  static readonly #onSocketDrain = function (this: Tagged): void {
    const conn = this[kConn];
    if (conn) conn.#stream?.resume();
  };

  static readonly #onSocketError = function (this: Tagged, error: Error): void {
    const conn = this[kConn];
    if (conn && !conn.#done) conn.#socketFailed(error);
  };

  static readonly #onSocketClose = function (this: Tagged): void {
    const conn = this[kConn];
    if (conn && !conn.#done) conn.#socketClosed();
  };

  static readonly #onStreamData = function (this: Stream & Tagged, chunk: Buffer): void {
    const conn = this[kConn];
    if (conn) conn.#streamData(this, chunk);
  };

  static readonly #onStreamEnd = function (this: Tagged): void {
    const conn = this[kConn];
    if (conn) conn.#streamEnd();
  };

  static readonly #onStreamDrain = function (this: Tagged): void {
    const conn = this[kConn];
    if (conn) conn.#clearPause(PAUSE_STREAM);
  };

  static readonly #onStreamError = function (this: Tagged, error: Error): void {
    const conn = this[kConn];
    if (conn && !conn.#done) conn.#streamFailed(error);
  };

  static readonly #onStreamClose = function (this: Stream & Tagged): void {
    const conn = this[kConn];
    if (conn && !conn.#done) conn.#streamClosed(this);
  };

  static readonly #onBudget = (conn: ResumableConn, granted: number): void => {
    conn.#budgetGranted(granted);
  };
}
