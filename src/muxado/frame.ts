import { Flag, FrameType, HEADER_SIZE, MAX_FRAME_PAYLOAD } from './constants.js';

/** A decoded frame, as the decoder reports it and `encodeFrame` takes it. */
export type Frame =
  | { type: typeof FrameType.SYN; streamId: number; fin: boolean; priority?: number; streamType?: number }
  | { type: typeof FrameType.RST; streamId: number; errorCode: number }
  | { type: typeof FrameType.DATA; streamId: number; fin: boolean; data: Buffer }
  | { type: typeof FrameType.WNDINC; streamId: number; increment: number }
  | { type: typeof FrameType.GOAWAY; lastStreamId: number; errorCode: number; debug: Buffer };

/** Writes an 8-byte header. Callers guarantee the ranges; reserved bits stay zero. */
export function writeHeader(buf: Buffer, offset: number, type: number, flags: number, streamId: number, length: number): void {
  buf[offset] = (length >>> 8) & 0x3f;
  buf[offset + 1] = length & 0xff;
  buf[offset + 2] = flags;
  buf[offset + 3] = type & 0x1f;
  buf.writeUInt32BE(streamId & 0x7fffffff, offset + 4);
}

export function encodeSyn(streamId: number, priority?: number, streamType?: number, fin = false): Buffer {
  let flags = fin ? Flag.FIN : 0;
  let length = 0;
  if (priority !== undefined) {
    flags |= Flag.PRIORITY;
    length += 4;
  }
  if (streamType !== undefined) {
    flags |= Flag.TYPE;
    length += 4;
  }
  const buf = Buffer.allocUnsafe(HEADER_SIZE + length);
  writeHeader(buf, 0, FrameType.SYN, flags, streamId, length);
  let offset = HEADER_SIZE;
  if (priority !== undefined) {
    buf.writeUInt32BE(priority >>> 0, offset);
    offset += 4;
  }
  if (streamType !== undefined) buf.writeUInt32BE(streamType >>> 0, offset);
  return buf;
}

export function encodeRst(streamId: number, errorCode: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + 4);
  writeHeader(buf, 0, FrameType.RST, 0, streamId, 4);
  buf.writeUInt32BE(errorCode >>> 0, HEADER_SIZE);
  return buf;
}

export function encodeWndInc(streamId: number, increment: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + 4);
  writeHeader(buf, 0, FrameType.WNDINC, 0, streamId, 4);
  buf.writeUInt32BE(increment & 0x7fffffff, HEADER_SIZE);
  return buf;
}

/** The debug text is cut to fit one frame. */
export function encodeGoAway(lastStreamId: number, errorCode: number, debug: Buffer = Buffer.alloc(0)): Buffer {
  const debugLength = Math.min(debug.length, MAX_FRAME_PAYLOAD - 8);
  const buf = Buffer.allocUnsafe(HEADER_SIZE + 8 + debugLength);
  writeHeader(buf, 0, FrameType.GOAWAY, 0, 0, 8 + debugLength);
  buf.writeUInt32BE(lastStreamId & 0x7fffffff, HEADER_SIZE);
  buf.writeUInt32BE(errorCode >>> 0, HEADER_SIZE + 4);
  debug.copy(buf, HEADER_SIZE + 8, 0, debugLength);
  return buf;
}

/** The header of a DATA frame; its payload is written after it without copying. */
export function encodeDataHeader(streamId: number, length: number, fin: boolean): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(buf, 0, FrameType.DATA, fin ? Flag.FIN : 0, streamId, length);
  return buf;
}

/** One whole frame in one buffer (tests and tools; the session writes DATA without copying). */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case FrameType.SYN:
      return encodeSyn(frame.streamId, frame.priority, frame.streamType, frame.fin);
    case FrameType.RST:
      return encodeRst(frame.streamId, frame.errorCode);
    case FrameType.DATA: {
      if (frame.data.length > MAX_FRAME_PAYLOAD) throw new RangeError(`DATA payload of ${frame.data.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
      return Buffer.concat([encodeDataHeader(frame.streamId, frame.data.length, frame.fin), frame.data]);
    }
    case FrameType.WNDINC:
      return encodeWndInc(frame.streamId, frame.increment);
    case FrameType.GOAWAY:
      return encodeGoAway(frame.lastStreamId, frame.errorCode, frame.debug);
  }
}
