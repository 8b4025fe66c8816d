/**
 * The session's read budget (issue 16): after 128 KiB handed to the decoder in
 * one loop turn it pauses its transport until the next turn. A transport left
 * paused fills up, so its reads then end at any offset of a frame, also inside
 * a WNDINC's 4-byte payload: that exposed a decoder bug (the DATA frame after
 * such a WNDINC ended 4 bytes early and its tail was read as a header: "unknown
 * frame type" against the Go reference, about one run in fifteen). Here the
 * peer's bytes come from memory, so the cuts are exactly where the test puts them.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { encodeFrame } from '../../src/muxado/frame.js';
import { server, type Session } from '../../src/muxado/index.js';
import { patternBytes } from '../support/bytes.js';
import { currentScope } from '../support/scope.js';
import { readAll } from './helpers.js';

/** A transport fed chunk by chunk from the test; what the session writes is kept. */
class MemoryTransport extends Duplex {
  readonly written: Buffer[] = [];
  /** How often the reader paused it (Readable emits 'pause' on each pause() of a flowing stream). */
  pauses = 0;

  constructor() {
    super();
    this.on('pause', () => this.pauses++);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk);
    callback();
  }
}

const STREAMS = [3, 5, 7, 9];
const ROUNDS = 3;
// Within the 64 KiB window of each stream, and 4 x 48 KiB is well over the 128 KiB budget.
const PIECE = 16_000;

describe('session: the read budget', () => {
  it('delivers every byte when reads end inside any frame, across the pause it takes after 128 KiB in one turn', async () => {
    const transport = new MemoryTransport();
    const session: Session = server(transport, { heartbeat: false });
    currentScope().add(() => session.close());
    const accepted = Promise.all(STREAMS.map(() => session.accept()));

    // The peer opens four streams and sends each three DATA frames, with a
    // WNDINC after each (as the Go reference returns window while it sends).
    const frames: Buffer[] = STREAMS.map((streamId) => encodeFrame({ type: FrameType.SYN, streamId, fin: false }));
    const cuts: number[] = [];
    let length = frames[0]!.length * STREAMS.length;
    for (let round = 0; round < ROUNDS; round++) {
      for (const streamId of STREAMS) {
        const data = patternBytes(PIECE, streamId * 100 + round);
        frames.push(encodeFrame({ type: FrameType.DATA, streamId, fin: false, data }));
        length += 8 + PIECE;
        frames.push(encodeFrame({ type: FrameType.WNDINC, streamId, increment: 1000 }));
        // A read that ends half-way through the WNDINC's payload.
        cuts.push(length + 8 + 2);
        length += 12;
      }
    }
    for (const streamId of STREAMS) frames.push(encodeFrame({ type: FrameType.DATA, streamId, fin: true, data: Buffer.alloc(0) }));
    const wire = Buffer.concat(frames);
    // And reads that end anywhere else too, as a full socket buffer does.
    for (let at = 10_000; at < wire.length; at += 10_000) cuts.push(at);
    cuts.sort((a, b) => a - b);

    // All in one turn: the session takes 128 KiB, pauses, and takes the rest on the next.
    let at = 0;
    for (const cut of [...cuts, wire.length]) {
      transport.push(wire.subarray(at, cut));
      at = cut;
    }

    const streams = await accepted;
    expect(streams.map((s) => s.id)).toEqual(STREAMS);
    await Promise.all(
      streams.map(async (stream) => {
        const expected = Buffer.concat(Array.from({ length: ROUNDS }, (_, round) => patternBytes(PIECE, stream.id * 100 + round)));
        const got = await readAll(stream);
        expect(got.length, `stream ${stream.id}`).toBe(expected.length);
        expect(got.equals(expected), `stream ${stream.id}: bytes`).toBe(true);
      }),
    );
    expect(session.isClosed).toBe(false);
    expect(transport.pauses).toBeGreaterThanOrEqual(1);
  });
});
