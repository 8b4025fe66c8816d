/**
 * Frame collection for tests: the session never needs frames as objects, so
 * these live here rather than in src/muxado.
 */
import { FrameType } from '../../src/muxado/constants.js';
import { FrameDecoder, type FrameHandler } from '../../src/muxado/decoder.js';
import type { Frame } from '../../src/muxado/frame.js';

/** A FrameHandler that appends every frame to `frames`, copying payloads so they outlive the chunk. */
export function collectFrames(frames: Frame[]): FrameHandler {
  return {
    onSyn: (streamId, fin, priority, streamType) =>
      frames.push({
        type: FrameType.SYN,
        streamId,
        fin,
        ...(priority !== undefined ? { priority } : {}),
        ...(streamType !== undefined ? { streamType } : {}),
      }),
    onRst: (streamId, errorCode) => frames.push({ type: FrameType.RST, streamId, errorCode }),
    onData: (streamId, data, fin) => frames.push({ type: FrameType.DATA, streamId, fin, data: Buffer.from(data) }),
    onWndInc: (streamId, increment) => frames.push({ type: FrameType.WNDINC, streamId, increment }),
    onGoAway: (lastStreamId, errorCode, debug) => frames.push({ type: FrameType.GOAWAY, lastStreamId, errorCode, debug: Buffer.from(debug) }),
  };
}

/** Decodes a whole byte string into frames; `rest` is the bytes of an unfinished frame. Throws ProtocolError. */
export function decodeFrames(bytes: Buffer): { frames: Frame[]; rest: number } {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(collectFrames(frames));
  decoder.push(bytes);
  return { frames, rest: decoder.pendingBytes };
}
