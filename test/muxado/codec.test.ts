import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { FrameDecoder } from '../../src/muxado/decoder.js';
import { ProtocolError } from '../../src/muxado/errors.js';
import { encodeFrame, type Frame } from '../../src/muxado/frame.js';
import { hex } from '../support/bytes.js';
import { collectFrames, decodeFrames } from './codec-helpers.js';


/** Literal wire bytes and the frame they are, checked both ways. */
const vectors: Array<[name: string, wire: string, frame: Frame]> = [
  ['SYN, no flags', '0000 00 01 00000003', { type: FrameType.SYN, streamId: 3, fin: false }],
  ['SYN with FIN', '0000 01 01 00000005', { type: FrameType.SYN, streamId: 5, fin: true }],
  ['SYN with priority', '0004 02 01 00000002 0000000a', { type: FrameType.SYN, streamId: 2, fin: false, priority: 10 }],
  ['SYN with type', '0004 04 01 00000007 00000009', { type: FrameType.SYN, streamId: 7, fin: false, streamType: 9 }],
  [
    'SYN with priority and type (the heartbeat stream)',
    '0008 06 01 00000003 7fffffff fffffeff',
    { type: FrameType.SYN, streamId: 3, fin: false, priority: 0x7fffffff, streamType: 0xfffffeff },
  ],
  [
    'SYN with FIN, priority and type',
    '0008 07 01 7fffffff ffffffff 00000000',
    { type: FrameType.SYN, streamId: 0x7fffffff, fin: true, priority: 0xffffffff, streamType: 0 },
  ],
  ['RST CANCEL', '0004 00 02 00000005 00000007', { type: FrameType.RST, streamId: 5, errorCode: 7 }],
  ['RST with a code beyond the table', '0004 00 02 00000004 deadbeef', { type: FrameType.RST, streamId: 4, errorCode: 0xdeadbeef }],
  ['DATA', '0005 00 03 00000003 68656c6c6f', { type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('hello') }],
  ['DATA with FIN', '0002 01 03 00000004 6869', { type: FrameType.DATA, streamId: 4, fin: true, data: Buffer.from('hi') }],
  ['DATA, empty, with FIN (half-close)', '0000 01 03 00000003', { type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) }],
  ['DATA, empty, no FIN', '0000 00 03 00000009', { type: FrameType.DATA, streamId: 9, fin: false, data: Buffer.alloc(0) }],
  ['WNDINC', '0004 00 04 00000003 00010000', { type: FrameType.WNDINC, streamId: 3, increment: 0x10000 }],
  ['WNDINC, largest', '0004 00 04 00000002 7fffffff', { type: FrameType.WNDINC, streamId: 2, increment: 0x7fffffff }],
  [
    'GOAWAY with debug text',
    '000b 00 06 00000000 00000007 00000001 627965',
    { type: FrameType.GOAWAY, lastStreamId: 7, errorCode: 1, debug: Buffer.from('bye') },
  ],
  [
    'GOAWAY without debug text',
    '0008 00 06 00000000 00000000 00000000',
    { type: FrameType.GOAWAY, lastStreamId: 0, errorCode: 0, debug: Buffer.alloc(0) },
  ],
];

function decodeAll(bytes: Buffer): Frame[] {
  const { frames, rest } = decodeFrames(bytes);
  expect(rest).toBe(0);
  return frames;
}

function decodeError(bytes: Buffer): ProtocolError {
  try {
    decodeFrames(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe('ERR_MUXADO_PROTOCOL');
    expect((error as ProtocolError).errorCode).toBe(1);
    return error as ProtocolError;
  }
  throw new Error(`decoded ${bytes.toString('hex')} without an error`);
}

describe('frame codec: literal frames', () => {
  it.each(vectors)('%s encodes to the literal bytes', (_name, wire, frame) => {
    expect(encodeFrame(frame).toString('hex')).toBe(hex(wire).toString('hex'));
  });

  it.each(vectors)('%s decodes from the literal bytes', (_name, wire, frame) => {
    expect(decodeAll(hex(wire))).toEqual([frame]);
  });

  it('encodes and decodes a DATA frame of the largest length (16383)', () => {
    const data = Buffer.alloc(0x3fff, 0xab);
    const wire = encodeFrame({ type: FrameType.DATA, streamId: 3, fin: false, data });
    expect(wire.subarray(0, 8).toString('hex')).toBe('3fff000300000003');
    expect(wire.length).toBe(8 + 0x3fff);
    expect(decodeAll(wire)).toEqual([{ type: FrameType.DATA, streamId: 3, fin: false, data }]);
  });

  it('refuses to encode a DATA payload longer than 16383 bytes', () => {
    expect(() => encodeFrame({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.alloc(0x4000) })).toThrow(RangeError);
  });

  it('cuts GOAWAY debug text to fit one frame', () => {
    const wire = encodeFrame({ type: FrameType.GOAWAY, lastStreamId: 1, errorCode: 0, debug: Buffer.alloc(20_000, 0x61) });
    expect(wire.length).toBe(8 + 0x3fff);
    const [frame] = decodeAll(wire);
    expect(frame).toMatchObject({ type: FrameType.GOAWAY, lastStreamId: 1 });
    expect((frame as { debug: Buffer }).debug.length).toBe(0x3fff - 8);
  });

  it('never sets a reserved bit when encoding', () => {
    // Values with the reserved bits set on the way in: they must not reach the wire.
    expect(encodeFrame({ type: FrameType.WNDINC, streamId: 0xffffffff, increment: 0xffffffff }).toString('hex')).toBe(
      '000400047fffffff7fffffff',
    );
    expect(encodeFrame({ type: FrameType.GOAWAY, lastStreamId: 0xffffffff, errorCode: 2, debug: Buffer.alloc(0) }).toString('hex')).toBe(
      '00080006000000007fffffff00000002',
    );
  });

  it('decodes several frames from one buffer in order', () => {
    const wire = Buffer.concat(vectors.map(([, w]) => hex(w)));
    expect(decodeAll(wire)).toEqual(vectors.map(([, , frame]) => frame));
  });

  it('reports a frame only once it is complete', () => {
    const wire = hex('0005 00 03 00000003 68656c6c6f');
    const { frames, rest } = decodeFrames(wire.subarray(0, 10));
    expect(frames).toEqual([]);
    expect(rest).toBe(10);
    expect(decodeFrames(wire.subarray(0, 5)).rest).toBe(5);
  });
});

describe('frame codec: reserved bits are masked off on receive', () => {
  it('ignores the two high bits of the length', () => {
    expect(decodeAll(hex('c005 00 03 00000003 68656c6c6f'))).toEqual([
      { type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('hello') },
    ]);
  });

  it('ignores the three high bits of the type byte', () => {
    expect(decodeAll(hex('0000 01 e3 00000003'))).toEqual([{ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) }]);
  });

  it('ignores the high bit of the stream id', () => {
    expect(decodeAll(hex('0004 00 02 80000005 00000006'))).toEqual([{ type: FrameType.RST, streamId: 5, errorCode: 6 }]);
  });

  it('ignores the high bit of a window increment and of a GOAWAY last stream id', () => {
    expect(decodeAll(hex('0004 00 04 00000003 80000010'))).toEqual([{ type: FrameType.WNDINC, streamId: 3, increment: 0x10 }]);
    expect(decodeAll(hex('0008 00 06 00000000 80000009 00000000'))).toEqual([
      { type: FrameType.GOAWAY, lastStreamId: 9, errorCode: 0, debug: Buffer.alloc(0) },
    ]);
  });

  it('ignores all reserved bits at once', () => {
    expect(decodeAll(hex('c000 00 e1 80000003'))).toEqual([{ type: FrameType.SYN, streamId: 3, fin: false }]);
  });
});

describe('frame codec: malformed frames are protocol errors', () => {
  it.each([
    ['type 0x0', '0000 00 00 00000003'],
    ['type 0x5 (the reserved priority frame)', '0004 00 05 00000003 00000001'],
    ['type 0x7', '0000 00 07 00000003'],
    ['type 0x1f', '0000 00 1f 00000003'],
  ])('an unknown frame type: %s', (_name, wire) => {
    expect(decodeError(hex(wire)).message).toMatch(/unknown frame type/);
  });

  it.each([
    ['no flags, length 4', '0004 00 01 00000003 00000000'],
    ['no flags, length 8', '0008 00 01 00000003 00000000 00000000'],
    ['PRIORITY, length 0', '0000 02 01 00000003'],
    ['PRIORITY, length 8', '0008 02 01 00000003 00000000 00000000'],
    ['TYPE, length 0', '0000 04 01 00000003'],
    ['PRIORITY and TYPE, length 4', '0004 06 01 00000003 00000000'],
    ['PRIORITY and TYPE, length 12', '000c 06 01 00000003 00000000 00000000 00000000'],
  ])('a SYN whose length does not match its flags: %s', (_name, wire) => {
    expect(decodeError(hex(wire)).message).toMatch(/SYN .* length/);
  });

  it.each([
    ['RST, length 0', '0000 00 02 00000003'],
    ['RST, length 3', '0003 00 02 00000003 000000'],
    ['RST, length 8', '0008 00 02 00000003 00000000 00000000'],
    ['WNDINC, length 0', '0000 00 04 00000003'],
    ['WNDINC, length 5', '0005 00 04 00000003 0000000001'],
  ])('%s (must be 4)', (_name, wire) => {
    expect(decodeError(hex(wire)).message).toMatch(/must be 4/);
  });

  it.each([
    ['length 0', '0000 00 06 00000000'],
    ['length 4', '0004 00 06 00000000 00000001'],
    ['length 7', '0007 00 06 00000000 00000001 000000'],
  ])('a GOAWAY shorter than 8 bytes: %s', (_name, wire) => {
    expect(decodeError(hex(wire)).message).toMatch(/GOAWAY .* at least 8/);
  });

  it.each([
    ['SYN', '0000 00 01 00000000'],
    ['RST', '0004 00 02 00000000 00000000'],
    ['DATA', '0001 00 03 00000000 00'],
    ['WNDINC', '0004 00 04 00000000 00000001'],
    ['SYN whose id is 0 once the reserved bit is masked off', '0000 00 01 80000000'],
  ])('a %s for stream 0', (_name, wire) => {
    expect(decodeError(hex(wire)).message).toMatch(/stream 0/);
  });

  it.each([
    ['stream 7, no debug text', '0008 00 06 00000007 00000000 00000000'],
    ['stream 3, claiming 16 KiB of debug text', '3fff 00 06 00000003'],
  ])('a GOAWAY for a stream (its id must be 0): %s', (_name, wire) => {
    expect(decodeError(hex(wire)).message).toMatch(/GOAWAY for stream \d+, must be 0/);
  });

  it('fails on the header, before the payload arrives', () => {
    // A bad RST announces a 3000-byte payload: the decoder must not wait for it.
    const decoder = new FrameDecoder(collectFrames([]));
    expect(() => decoder.push(hex('0bb8 00 02 00000003'))).toThrow(ProtocolError);
  });

  it('delivers the frames before a malformed one, then stays dead', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder(collectFrames(frames));
    expect(() => decoder.push(hex('0000 01 03 00000003  0000 00 05 00000003'))).toThrow(ProtocolError);
    expect(frames).toEqual([{ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) }]);
    // A dead decoder keeps failing, even on well-formed bytes.
    expect(() => decoder.push(hex('0000 01 03 00000003'))).toThrow(ProtocolError);
    expect(frames).toHaveLength(1);
  });

  it('calls nothing after stop()', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder(collectFrames(frames));
    decoder.push(hex('0000 01 03 00000003'));
    decoder.stop();
    decoder.push(hex('0000 01 03 00000005'));
    expect(frames).toHaveLength(1);
  });
});

describe('frame codec: split input', () => {
  function decodeInPieces(wire: Buffer, cuts: number[]): Frame[] {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder(collectFrames(frames));
    let at = 0;
    for (const cut of [...cuts, wire.length]) {
      decoder.push(wire.subarray(at, cut));
      at = cut;
    }
    expect(decoder.pendingBytes).toBe(0);
    return frames;
  }

  it.each(vectors)('%s decodes the same when split at every byte boundary', (_name, wire, frame) => {
    const bytes = hex(wire);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(decodeInPieces(bytes, [cut])).toEqual([frame]);
    }
  });

  it('decodes every frame the same when fed one byte at a time', () => {
    const wire = Buffer.concat(vectors.map(([, w]) => hex(w)));
    const cuts = Array.from({ length: wire.length - 1 }, (_, i) => i + 1);
    expect(decodeInPieces(wire, cuts)).toEqual(vectors.map(([, , frame]) => frame));
  });

  it('decodes a run of frames the same when split at any two byte boundaries', () => {
    const wire = Buffer.concat(vectors.map(([, w]) => hex(w)));
    const expected = vectors.map(([, , frame]) => frame);
    for (let a = 0; a <= wire.length; a += 3) {
      for (let b = a; b <= wire.length; b += 5) {
        expect(decodeInPieces(wire, [a, b])).toEqual(expected);
      }
    }
  });

  it('decodes a large DATA frame split at every byte boundary of its header and around its payload', () => {
    const data = Buffer.alloc(0x3fff);
    for (let i = 0; i < data.length; i++) data[i] = i * 7;
    const wire = encodeFrame({ type: FrameType.DATA, streamId: 11, fin: true, data });
    for (const cut of [1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 8000, wire.length - 1]) {
      const frames = decodeInPieces(wire, [cut]);
      expect(frames).toHaveLength(1);
      const frame = frames[0] as Extract<Frame, { type: typeof FrameType.DATA }>;
      expect([frame.type, frame.streamId, frame.fin]).toEqual([FrameType.DATA, 11, true]);
      // Buffer#equals: toEqual on 16 KiB buffers is needlessly slow.
      expect(frame.data.equals(data)).toBe(true);
    }
  });

  it('hands DATA payloads out as bytes that stay valid after the chunk is reused', () => {
    // The handler's buffer may be a view: decodeFrames copies it, so reusing the
    // input buffer afterwards must not change what was decoded.
    const wire = hex('0003 00 03 00000003 616263');
    const { frames } = decodeFrames(wire);
    wire.fill(0);
    expect(frames).toEqual([{ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('abc') }]);
  });
});

describe('frame codec: DATA in pieces (splitData, as the session decodes)', () => {
  it('hands on a DATA frame split at every byte as pieces that add up to its payload, FIN with the last only', () => {
    const payload = Buffer.from(Array.from({ length: 40 }, (_, i) => i));
    const wire = Buffer.concat([
      encodeFrame({ type: FrameType.DATA, streamId: 5, fin: true, data: payload }),
      encodeFrame({ type: FrameType.WNDINC, streamId: 5, increment: 9 }),
    ]);
    for (let cut = 1; cut < wire.length; cut++) {
      const pieces: Array<{ id: number; data: Buffer; fin: boolean }> = [];
      const increments: number[] = [];
      const decoder = new FrameDecoder(
        { ...collectFrames([]), onData: (id, data, fin) => pieces.push({ id, data: Buffer.from(data), fin }), onWndInc: (_id, n) => increments.push(n) },
        { splitData: true },
      );
      decoder.push(wire.subarray(0, cut));
      decoder.push(wire.subarray(cut));
      expect(Buffer.concat(pieces.map((p) => p.data)).equals(payload), `cut at ${cut}`).toBe(true);
      expect(pieces.every((p) => p.id === 5)).toBe(true);
      expect(pieces.map((p) => p.fin)).toEqual([...pieces.slice(1).map(() => false), true]);
      expect(increments).toEqual([9]);
    }
  });

  it('hands on a DATA frame whole after a frame whose payload came in pieces (RST, WNDINC, SYN, GOAWAY)', () => {
    // Regression: the count of payload bytes taken was left at the previous
    // frame's length, so the DATA frame ended that many bytes early and its
    // last bytes were read as a header ("unknown frame type", seen against
    // the Go reference once reads ended at arbitrary offsets).
    const payload = Buffer.from(Array.from({ length: 40 }, (_, i) => 0xa0 + i));
    const before: Frame[] = [
      { type: FrameType.RST, streamId: 5, errorCode: 7 },
      { type: FrameType.WNDINC, streamId: 5, increment: 9 },
      { type: FrameType.SYN, streamId: 7, fin: false, priority: 1, streamType: 2 },
      { type: FrameType.GOAWAY, lastStreamId: 3, errorCode: 0, debug: Buffer.from('bye') },
    ];
    for (const first of before) {
      const head = encodeFrame(first);
      const wire = Buffer.concat([
        head,
        encodeFrame({ type: FrameType.DATA, streamId: 5, fin: true, data: payload }),
        encodeFrame({ type: FrameType.WNDINC, streamId: 5, increment: 1 }),
      ]);
      // Every cut inside the first frame's payload.
      for (let cut = 9; cut < head.length; cut++) {
        const frames: Frame[] = [];
        const pieces: Buffer[] = [];
        const decoder = new FrameDecoder({ ...collectFrames(frames), onData: (_id, data) => pieces.push(Buffer.from(data)) }, { splitData: true });
        decoder.push(wire.subarray(0, cut));
        decoder.push(wire.subarray(cut));
        expect(Buffer.concat(pieces).equals(payload), `${first.type} cut at ${cut}`).toBe(true);
        expect(frames).toEqual([first, { type: FrameType.WNDINC, streamId: 5, increment: 1 }]);
        expect(decoder.pendingBytes).toBe(0);
      }
    }
  });
});

describe('frame codec: the header hook (onHeader)', () => {
  type Header = [type: number, flags: number, streamId: number, length: number];

  function hooked(verdict: (header: Header) => ProtocolError | undefined = () => undefined): {
    decoder: FrameDecoder;
    events: Array<Header | Frame>;
  } {
    const events: Array<Header | Frame> = [];
    const frames: Frame[] = [];
    const collect = collectFrames(frames);
    // Frames land in `frames`; move each into `events` so the order of header and frame shows.
    const after =
      <A extends unknown[]>(call: (...args: A) => unknown) =>
      (...args: A): void => {
        call(...args);
        events.push(...frames.splice(0));
      };
    const decoder = new FrameDecoder({
      onHeader: (type, flags, streamId, length) => {
        events.push([type, flags, streamId, length]);
        return verdict([type, flags, streamId, length]);
      },
      onSyn: after(collect.onSyn),
      onRst: after(collect.onRst),
      onData: after(collect.onData),
      onWndInc: after(collect.onWndInc),
      onGoAway: after(collect.onGoAway),
    });
    return { decoder, events };
  }

  it('sees each header as soon as its 8 bytes are in, before the payload, then the frame', () => {
    const { decoder, events } = hooked();
    const wire = hex('0005 01 03 00000003 68656c6c6f');
    for (let i = 0; i < 7; i++) decoder.push(wire.subarray(i, i + 1));
    expect(events).toEqual([]);
    decoder.push(wire.subarray(7, 8));
    expect(events).toEqual([[FrameType.DATA, 0x01, 3, 5]]);
    decoder.push(wire.subarray(8, 12));
    expect(events).toHaveLength(1);
    decoder.push(wire.subarray(12));
    expect(events).toEqual([
      [FrameType.DATA, 0x01, 3, 5],
      { type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.from('hello') },
    ]);
  });

  it('sees headers with the reserved bits masked off, in order with the frames', () => {
    const { decoder, events } = hooked();
    decoder.push(hex('c004 02 e1 80000005 0000000a 0008 00 06 00000000 00000003 00000000'));
    expect(events).toEqual([
      [FrameType.SYN, 0x02, 5, 4],
      { type: FrameType.SYN, streamId: 5, fin: false, priority: 10 },
      [FrameType.GOAWAY, 0, 0, 8],
      { type: FrameType.GOAWAY, lastStreamId: 3, errorCode: 0, debug: Buffer.alloc(0) },
    ]);
  });

  it('is not called for a header whose shape is already wrong', () => {
    const { decoder, events } = hooked();
    expect(() => decoder.push(hex('3fff 00 05 00000003'))).toThrow(/unknown frame type/);
    expect(events).toEqual([]);
  });

  it('a returned ProtocolError is thrown from push() at once, and the decoder stays dead', () => {
    const refusal = new ProtocolError('DATA for stream 9, which was never opened');
    const { decoder, events } = hooked(([type, , id]) => (type === FrameType.DATA && id === 9 ? refusal : undefined));
    // A good frame, then the header of one that claims 16 KiB that never come.
    expect(() => decoder.push(hex('0000 01 03 00000003  3fff 00 03 00000009'))).toThrow(refusal);
    expect(events).toEqual([
      [FrameType.DATA, 0x01, 3, 0],
      { type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) },
      [FrameType.DATA, 0, 9, 0x3fff],
    ]);
    expect(() => decoder.push(hex('0000 01 03 00000003'))).toThrow(refusal);
    expect(events).toHaveLength(3);
  });
});
