import { Flag, FrameType, HEADER_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';

/** What the decoder calls for each complete, well-formed frame. */
export interface FrameHandler {
  /**
   * Each header, as soon as its 8 bytes are in and its shape is valid, before
   * any of its payload. This is where validity that depends on state (stream
   * ids) is judged: a frame already known to be invalid must end the session
   * now, not after a payload the peer may never send. Return a ProtocolError
   * to reject the frame; `push` then throws it and the decoder is dead. The
   * frame's own `on*` call follows once its payload is in.
   */
  onHeader?(type: FrameType, flags: number, streamId: number, length: number): ProtocolError | undefined;
  onSyn(streamId: number, fin: boolean, priority: number | undefined, streamType: number | undefined): void;
  onRst(streamId: number, errorCode: number): void;
  /** `data` may be a view into the transport's chunk: copy it to keep it past the call. */
  onData(streamId: number, data: Buffer, fin: boolean): void;
  onWndInc(streamId: number, increment: number): void;
  onGoAway(lastStreamId: number, errorCode: number, debug: Buffer): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * A pure state machine fed bytes in chunks of any size. It validates every
 * frame's shape (type, length, stream id 0) as soon as the 8-byte header is
 * in, lets the handler judge the header (`onHeader`: what depends on state,
 * such as stream ids), and calls the handler again once the payload is in;
 * windows are checked by the streams. After the first malformed frame `push`
 * throws a ProtocolError and the decoder is dead.
 */
export class FrameDecoder {
  readonly #handler: FrameHandler;
  readonly #splitData: boolean;
  readonly #header = Buffer.alloc(HEADER_SIZE);
  #headerFill = 0;
  #inPayload = false;
  #type = 0;
  #flags = 0;
  #streamId = 0;
  #length = 0;
  #partial: Buffer | null = null;
  /** Payload bytes of the current frame taken so far, whole or in pieces. */
  #partialFill = 0;
  #stopped = false;
  #failure: ProtocolError | null = null;

  /**
   * With `splitData`, a DATA frame that arrives in several chunks reaches
   * `onData` in pieces (FIN with the last); the session does not care where
   * frames end. Without it (tools, tests), every frame arrives whole.
   */
  constructor(handler: FrameHandler, options: { splitData?: boolean } = {}) {
    this.#handler = handler;
    this.#splitData = options.splitData ?? false;
  }

  /** Bytes held of a frame not yet complete (0 between frames). */
  get pendingBytes(): number {
    return this.#inPayload ? HEADER_SIZE + this.#partialFill : this.#headerFill;
  }

  /**
   * A GOAWAY cut short by the end of the transport, if its 8-byte body
   * arrived. The reference peer's GOAWAY claims 8 bytes more than it sends
   * (its debug text never follows), so at EOF this is how its clean
   * Close() looks (docs/muxado.md, the reference peer's quirks).
   */
  truncatedGoAway(): { lastStreamId: number; errorCode: number } | null {
    if (!this.#inPayload || this.#type !== FrameType.GOAWAY || this.#partial === null || this.#partialFill < 8) return null;
    return { lastStreamId: this.#partial.readUInt32BE(0) & 0x7fffffff, errorCode: this.#partial.readUInt32BE(4) };
  }

  /** Stop calling the handler (the session ended); later pushes are ignored. */
  stop(): void {
    this.#stopped = true;
  }

  push(chunk: Buffer): void {
    if (this.#failure) throw this.#failure;
    let offset = 0;
    const end = chunk.length;
    while (offset < end && !this.#stopped) {
      if (!this.#inPayload) {
        if (this.#headerFill === 0 && end - offset >= HEADER_SIZE) {
          this.#parseHeader(chunk, offset);
          offset += HEADER_SIZE;
        } else {
          const n = Math.min(HEADER_SIZE - this.#headerFill, end - offset);
          chunk.copy(this.#header, this.#headerFill, offset, offset + n);
          this.#headerFill += n;
          offset += n;
          if (this.#headerFill < HEADER_SIZE) return;
          this.#headerFill = 0;
          this.#parseHeader(this.#header, 0);
        }
        if (this.#length === 0) {
          this.#dispatch(EMPTY);
        } else {
          // Every payload counts from 0 here. A count left over from an
          // RST/WNDINC/SYN payload that came in pieces cut the next DATA
          // frame short and read its last bytes as a header.
          this.#inPayload = true;
          this.#partialFill = 0;
        }
        continue;
      }
      if (this.#splitData && this.#type === FrameType.DATA) {
        // A DATA frame (16,391 bytes) rarely fits one TLS record (16,384):
        // hand on each piece as a view rather than reassembling a copy.
        const n = Math.min(this.#length - this.#partialFill, end - offset);
        const piece = chunk.subarray(offset, offset + n);
        offset += n;
        this.#partialFill += n;
        const last = this.#partialFill === this.#length;
        if (last) {
          this.#partialFill = 0;
          this.#inPayload = false;
        }
        this.#handler.onData(this.#streamId, piece, last && (this.#flags & Flag.FIN) !== 0);
        continue;
      }
      if (this.#partial === null && end - offset >= this.#length) {
        const payload = chunk.subarray(offset, offset + this.#length);
        offset += this.#length;
        this.#inPayload = false;
        this.#dispatch(payload);
        continue;
      }
      this.#partial ??= Buffer.allocUnsafe(this.#length);
      const n = Math.min(this.#length - this.#partialFill, end - offset);
      chunk.copy(this.#partial, this.#partialFill, offset, offset + n);
      this.#partialFill += n;
      offset += n;
      if (this.#partialFill === this.#length) {
        const payload = this.#partial;
        this.#partial = null;
        this.#inPayload = false;
        this.#dispatch(payload);
      }
    }
  }

  #fail(message: string): never {
    this.#failure = new ProtocolError(message);
    throw this.#failure;
  }

  #parseHeader(buf: Buffer, at: number): void {
    // Reserved bits are masked off, as the protocol says.
    const length = ((buf[at]! & 0x3f) << 8) | buf[at + 1]!;
    const flags = buf[at + 2]!;
    const type = buf[at + 3]! & 0x1f;
    const streamId = buf.readUInt32BE(at + 4) & 0x7fffffff;
    switch (type) {
      case FrameType.SYN: {
        const expected = (flags & Flag.PRIORITY ? 4 : 0) + (flags & Flag.TYPE ? 4 : 0);
        if (length !== expected) this.#fail(`SYN for stream ${streamId} has length ${length}, its flags say ${expected}`);
        if (streamId === 0) this.#fail('SYN for stream 0');
        break;
      }
      case FrameType.RST:
      case FrameType.WNDINC:
        if (length !== 4) this.#fail(`${type === FrameType.RST ? 'RST' : 'WNDINC'} for stream ${streamId} has length ${length}, must be 4`);
        if (streamId === 0) this.#fail(`${type === FrameType.RST ? 'RST' : 'WNDINC'} for stream 0`);
        break;
      case FrameType.DATA:
        if (streamId === 0) this.#fail('DATA for stream 0');
        break;
      case FrameType.GOAWAY:
        if (length < 8) this.#fail(`GOAWAY has length ${length}, must be at least 8`);
        // GOAWAY belongs to the session, so its id is 0 (the reference sends 0
        // and does not look). Checking it means a header of random bytes that
        // happens to say GOAWAY cannot hold the session waiting for 16 KiB of
        // "debug text".
        if (streamId !== 0) this.#fail(`GOAWAY for stream ${streamId}, must be 0`);
        break;
      default:
        this.#fail(`unknown frame type 0x${type.toString(16)}`);
    }
    // The switch above failed on every other type.
    const verdict = this.#handler.onHeader?.(type as FrameType, flags, streamId, length);
    if (verdict) {
      this.#failure = verdict;
      throw verdict;
    }
    this.#type = type;
    this.#flags = flags;
    this.#streamId = streamId;
    this.#length = length;
  }

  #dispatch(payload: Buffer): void {
    const h = this.#handler;
    const id = this.#streamId;
    switch (this.#type) {
      case FrameType.DATA:
        h.onData(id, payload, (this.#flags & Flag.FIN) !== 0);
        return;
      case FrameType.WNDINC:
        h.onWndInc(id, payload.readUInt32BE(0) & 0x7fffffff);
        return;
      case FrameType.SYN: {
        let at = 0;
        let priority: number | undefined;
        let streamType: number | undefined;
        if (this.#flags & Flag.PRIORITY) {
          priority = payload.readUInt32BE(at);
          at += 4;
        }
        if (this.#flags & Flag.TYPE) streamType = payload.readUInt32BE(at);
        h.onSyn(id, (this.#flags & Flag.FIN) !== 0, priority, streamType);
        return;
      }
      case FrameType.RST:
        h.onRst(id, payload.readUInt32BE(0));
        return;
      case FrameType.GOAWAY:
        // Copy: the debug text may outlive the transport's chunk.
        h.onGoAway(payload.readUInt32BE(0) & 0x7fffffff, payload.readUInt32BE(4), Buffer.from(payload.subarray(8)));
        return;
    }
  }
}
