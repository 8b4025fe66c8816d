import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { FrameDecoder, type FrameHandler } from '../../src/muxado/decoder.js';
import { ProtocolError } from '../../src/muxado/errors.js';
import { encodeFrame, type Frame } from '../../src/muxado/frame.js';
import { collectFrames } from './codec-helpers.js';

// Time-boxed: each property stops after its time limit even if runs remain,
// so the file stays a few seconds long on a slow machine.
const budget = { numRuns: 400, interruptAfterTimeLimit: 1500 };

const u32 = fc.nat({ max: 0xffffffff });
const u31 = fc.nat({ max: 0x7fffffff });
const streamId = fc.integer({ min: 1, max: 0x7fffffff });
// Mostly small payloads, sometimes up to the largest frame.
const payload = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 0x3f00, maxLength: 0x3fff }) },
);

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ streamId, fin: fc.boolean(), priority: fc.option(u32, { nil: undefined }), streamType: fc.option(u32, { nil: undefined }) }).map(
    ({ streamId, fin, priority, streamType }): Frame => ({
      type: FrameType.SYN,
      streamId,
      fin,
      ...(priority !== undefined ? { priority } : {}),
      ...(streamType !== undefined ? { streamType } : {}),
    }),
  ),
  fc.record({ streamId, errorCode: u32 }).map((f): Frame => ({ type: FrameType.RST, ...f })),
  fc.record({ streamId, fin: fc.boolean(), data: payload }).map((f): Frame => ({ type: FrameType.DATA, ...f, data: Buffer.from(f.data) })),
  fc.record({ streamId, increment: u31 }).map((f): Frame => ({ type: FrameType.WNDINC, ...f })),
  fc.record({ lastStreamId: u31, errorCode: u32, debug: fc.uint8Array({ maxLength: 64 }) }).map(
    (f): Frame => ({ type: FrameType.GOAWAY, ...f, debug: Buffer.from(f.debug) }),
  ),
);

/** Cut points (sorted, within 0..length) from random fractions. */
function cutsOf(length: number, fractions: number[]): number[] {
  return fractions.map((f) => Math.floor(f * (length + 1))).sort((a, b) => a - b);
}

function pushInPieces(decoder: FrameDecoder, bytes: Buffer, cuts: number[]): void {
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    decoder.push(bytes.subarray(at, cut));
    at = cut;
  }
}

/**
 * Collects frames from a `splitData` decoder, joining each DATA frame's
 * pieces back into one frame (the header says how many bytes it has).
 */
function joiningPieces(frames: Frame[]): FrameHandler {
  let pieces: Buffer[] = [];
  let have = 0;
  let want = 0;
  return {
    ...collectFrames(frames),
    onHeader: (type, _flags, _streamId, length) => {
      if (type === FrameType.DATA) [pieces, have, want] = [[], 0, length];
      return undefined;
    },
    onData: (streamId, data, fin) => {
      pieces.push(Buffer.from(data));
      have += data.length;
      expect(have).toBeLessThanOrEqual(want);
      if (have < want) expect(fin, 'FIN on a piece before the last').toBe(false);
      else frames.push({ type: FrameType.DATA, streamId, fin, data: Buffer.concat(pieces) });
    },
  };
}

const fractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { maxLength: 40 });

describe('frame codec properties', () => {
  it('any sequence of frames round-trips through encodeFrame and FrameDecoder, however the bytes are chunked', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fractions, (frames, cutFractions) => {
        const wire = Buffer.concat(frames.map(encodeFrame));
        const decoded: Frame[] = [];
        const decoder = new FrameDecoder(collectFrames(decoded));
        pushInPieces(decoder, wire, cutsOf(wire.length, cutFractions));
        expect(decoder.pendingBytes).toBe(0);
        expect(decoded).toEqual(frames);
      }),
      budget,
    );
  });

  it('with splitData (as the session decodes), DATA pieces join into the same frames, however the bytes are chunked', () => {
    // The pieces path once kept a count from the previous payload: a DATA frame
    // after an RST/WNDINC/SYN whose payload came in pieces ended early.
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fractions, (frames, cutFractions) => {
        const wire = Buffer.concat(frames.map(encodeFrame));
        const decoded: Frame[] = [];
        const decoder = new FrameDecoder(joiningPieces(decoded), { splitData: true });
        pushInPieces(decoder, wire, cutsOf(wire.length, cutFractions));
        expect(decoder.pendingBytes).toBe(0);
        expect(decoded).toEqual(frames);
      }),
      budget,
    );
  });

  it('random bytes never crash the decoder: it either decodes or throws ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fractions, (bytes, cutFractions) => {
        const decoder = new FrameDecoder(collectFrames([]));
        try {
          pushInPieces(decoder, Buffer.from(bytes), cutsOf(bytes.length, cutFractions));
        } catch (error) {
          expect(error).toBeInstanceOf(ProtocolError);
        }
      }),
      budget,
    );
  });

  it('valid frames with random bytes corrupted never crash the decoder', () => {
    // Random bytes rarely form a plausible header; corrupting valid frames reaches deeper states.
    fc.assert(
      fc.property(
        fc.array(frameArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }),
        fractions,
        (frames, corruptions, cutFractions) => {
          const wire = Buffer.concat(frames.map(encodeFrame));
          for (const [where, value] of corruptions) wire[Math.floor(where * wire.length)] = value;
          const decoded: Frame[] = [];
          const decoder = new FrameDecoder(collectFrames(decoded));
          try {
            pushInPieces(decoder, wire, cutsOf(wire.length, cutFractions));
          } catch (error) {
            expect(error).toBeInstanceOf(ProtocolError);
          }
          // Whatever was decoded re-encodes to a well-formed frame of the same kind.
          for (const frame of decoded) expect(() => encodeFrame(frame)).not.toThrow();
        },
      ),
      budget,
    );
  });
});
