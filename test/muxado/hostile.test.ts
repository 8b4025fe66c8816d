import fc from 'fast-check';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FrameType, HEARTBEAT_PRIORITY, HEARTBEAT_STREAM_TYPE, INITIAL_WINDOW } from '../../src/muxado/constants.js';
import { encodeFrame } from '../../src/muxado/frame.js';
import { ErrorCode, LimitError, ProtocolError, SessionClosedError, StreamResetError, type Session } from '../../src/muxado/index.js';
import { hex } from '../support/bytes.js';
import { quiet, rawPeerOf, readAll, streamOutcome, type RawPeer } from './helpers.js';


/**
 * A server session with a raw client that opened stream 3 (accepted by the
 * application, which listens for errors) and stream 5 (still in the backlog).
 */
async function liveServer(): Promise<{ session: Session; peer: RawPeer; held: Promise<Error | null> }> {
  const { session, peer } = await rawPeerOf('server');
  peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.SYN, streamId: 5, fin: false });
  const stream = await session.accept();
  const held = streamOutcome(stream);
  await peer.barrier(7);
  return { session, peer, held };
}

async function expectProtocolFailure(session: Session, peer: RawPeer, held?: Promise<Error | null>): Promise<void> {
  const end = await session.closed;
  expect(end.initiator).toBe('local');
  expect(end.error).toBeInstanceOf(ProtocolError);
  expect(end.error?.code).toBe('ERR_MUXADO_PROTOCOL');
  // The peer is told, then the transport is closed.
  const goaway = await peer.nextOf(FrameType.GOAWAY);
  expect(goaway.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  expect(goaway.debug.toString()).toBe(end.error?.message);
  await peer.waitEnded();
  expect(peer.decodeError).toBeNull();
  if (held) {
    const error = await held;
    expect(error).toBeInstanceOf(SessionClosedError);
    expect((error as SessionClosedError).errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  }
}

describe('malformed frames on a live session end it with GOAWAY(PROTOCOL_ERROR)', () => {
  it.each([
    ['a SYN of the receiver\'s own parity', { type: FrameType.SYN, streamId: 8, fin: false }],
    ['a SYN whose id is not above the last (repeated)', { type: FrameType.SYN, streamId: 5, fin: false }],
    ['a SYN whose id is not above the last (lower)', { type: FrameType.SYN, streamId: 3, fin: false }],
    ['DATA for a stream never opened', { type: FrameType.DATA, streamId: 9, fin: false, data: Buffer.from('x') }],
    ['DATA for an id of ours never opened', { type: FrameType.DATA, streamId: 2, fin: false, data: Buffer.from('x') }],
    ['WNDINC for a stream never opened', { type: FrameType.WNDINC, streamId: 11, increment: 10 }],
    ['RST for a stream never opened', { type: FrameType.RST, streamId: 13, errorCode: 0 }],
  ] as const)('%s', async (_name, frame) => {
    const { session, peer, held } = await liveServer();
    peer.send(frame);
    await expectProtocolFailure(session, peer, held);
  });

  it.each([
    ['an unknown frame type (0x5)', '0004 00 05 00000003 00000001'],
    ['an unknown frame type (0x0)', '0000 00 00 00000003'],
    ['a GOAWAY shorter than 8 bytes', '0004 00 06 00000000 00000000'],
    ['an RST of the wrong length', '0003 00 02 00000003 000000'],
    ['a SYN whose length does not match its flags', '0004 00 01 00000009 00000000'],
    ['DATA for stream 0', '0001 00 03 00000000 00'],
  ])('%s', async (_name, wire) => {
    const { session, peer, held } = await liveServer();
    peer.send(hex(wire));
    await expectProtocolFailure(session, peer, held);
  });

  it('SYN id 1 to a server (the reference treats ids <= 1 as used)', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 1, fin: false });
    await expectProtocolFailure(session, peer);
  });

  it('a SYN of the wrong parity to a client', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false });
    await expectProtocolFailure(session, peer);
  });

  it('a malformed frame split over many writes', async () => {
    const { session, peer, held } = await liveServer();
    for (const byte of hex('0007 00 06 00000000 00000001 000000')) {
      peer.socket.write(Buffer.from([byte]));
    }
    await expectProtocolFailure(session, peer, held);
  });

  it('frames after the malformed one are ignored', async () => {
    const { session, peer } = await liveServer();
    const seen: number[] = [];
    session.on('stream', (s) => seen.push(quiet(s).id));
    peer.send(Buffer.concat([hex('0000 00 05 00000003'), encodeFrame({ type: FrameType.SYN, streamId: 9, fin: false })]));
    await expectProtocolFailure(session, peer);
    // Stream 5 came out of the backlog when the listener was added; 9 never arrived.
    expect(seen).toEqual([5]);
  });
});

describe('stream-level violations reset only that stream', () => {
  it('DATA beyond the window gets RST(FLOW_CONTROL_ERROR); the session and other streams go on', async () => {
    const { session, peer, held } = await liveServer();
    // Stream 3 is accepted but not read, so no window comes back.
    const full = Buffer.alloc(0x3fff);
    let sent = 0;
    while (sent + full.length <= INITIAL_WINDOW) {
      peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: full });
      sent += full.length;
    }
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.alloc(INITIAL_WINDOW - sent) });
    await peer.barrier(7);
    expect(peer.received(FrameType.RST)).toEqual([]);
    // One byte too many.
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('!') });
    expect(await peer.nextOf(FrameType.RST, 3)).toEqual({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.FLOW_CONTROL_ERROR });
    const error = await held;
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({ errorCode: ErrorCode.FLOW_CONTROL_ERROR, remote: false });
    // Late frames for the reset stream are dropped without another RST.
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('late') });
    await peer.barrier(7);
    expect(peer.received(FrameType.RST)).toHaveLength(1);
    // Stream 5, waiting in the backlog, still works.
    peer.send({ type: FrameType.DATA, streamId: 5, fin: true, data: Buffer.from('fine') });
    const five = quiet(await session.accept());
    expect((await readAll(five)).toString()).toBe('fine');
    expect(session.isClosed).toBe(false);
  });

  it('DATA beyond the window on a stream in the backlog resets it without crashing', async () => {
    const { session, peer } = await liveServer();
    const chunk = Buffer.alloc(0x3fff);
    for (let i = 0; i < 5; i++) peer.send({ type: FrameType.DATA, streamId: 5, fin: false, data: chunk });
    expect(await peer.nextOf(FrameType.RST, 5)).toMatchObject({ errorCode: ErrorCode.FLOW_CONTROL_ERROR });
    await peer.barrier(7);
    expect(session.isClosed).toBe(false);
    expect(session.openStreams).toBe(1);
  });

  it('DATA after FIN gets RST(STREAM_CLOSED)', async () => {
    const { session, peer, held } = await liveServer();
    peer.send({ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.from('done') });
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('more') });
    expect(await peer.nextOf(FrameType.RST, 3)).toMatchObject({ errorCode: ErrorCode.STREAM_CLOSED });
    expect(await held).toMatchObject({ errorCode: ErrorCode.STREAM_CLOSED });
    expect(session.isClosed).toBe(false);
  });

  it('DATA for a stream that has ended gets RST(STREAM_CLOSED); WNDINC and RST for it are ignored', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: true });
    const stream = quiet(await session.accept());
    stream.resume();
    stream.end();
    await once(stream, 'close');
    await peer.next((f) => f.type === FrameType.DATA && f.streamId === 3 && f.fin);
    peer.send({ type: FrameType.WNDINC, streamId: 3, increment: 100 }, { type: FrameType.RST, streamId: 3, errorCode: 0 });
    await peer.barrier(5);
    expect(peer.received(FrameType.RST)).toEqual([]);
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('late') });
    expect(await peer.nextOf(FrameType.RST, 3)).toMatchObject({ errorCode: ErrorCode.STREAM_CLOSED });
    expect(session.isClosed).toBe(false);
  });

  it('window increments past 2^31-1 reset the stream with FLOW_CONTROL_ERROR', async () => {
    const { session, peer, held } = await liveServer();
    peer.send({ type: FrameType.WNDINC, streamId: 3, increment: 0x7fffffff });
    expect(await peer.nextOf(FrameType.RST, 3)).toMatchObject({ errorCode: ErrorCode.FLOW_CONTROL_ERROR });
    expect(await held).toMatchObject({ errorCode: ErrorCode.FLOW_CONTROL_ERROR });
    expect(session.isClosed).toBe(false);
  });
});

describe('resource limits against a peer that sends but does not read', () => {
  it('a peer that makes the session answer faster than it reads is cut off at maxControlQueueBytes', async () => {
    const { session, peer } = await rawPeerOf('server', { maxControlQueueBytes: 64 * 1024 });
    peer.socket.pause();
    // Every 16 KiB on our heartbeat stream is echoed; keeping the echo window
    // open, the peer makes the session answer as fast as it sends.
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false, priority: HEARTBEAT_PRIORITY, streamType: HEARTBEAT_STREAM_TYPE });
    const beat = encodeFrame({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.alloc(0x3fff) });
    const grant = encodeFrame({ type: FrameType.WNDINC, streamId: 3, increment: 0x3fff });
    const burst = Buffer.concat(Array.from({ length: 64 }, () => Buffer.concat([beat, grant])));
    let sent = 0;
    while (!session.isClosed && sent < 512 * 1024 * 1024) {
      if (!peer.socket.write(burst)) await Promise.race([once(peer.socket, 'drain'), session.closed]);
      sent += burst.length;
    }
    const end = await session.closed;
    expect(end.initiator).toBe('local');
    expect(end.error).toBeInstanceOf(LimitError);
    expect(end.error?.code).toBe('ERR_MUXADO_LIMIT');
    // The GOAWAY it sends ends the session: INTERNAL_ERROR, not LimitError's usual REFUSED_STREAM.
    expect(end.error?.errorCode).toBe(ErrorCode.INTERNAL_ERROR);
    expect(end.error?.message).toMatch(/maxControlQueueBytes/);
  });
});

describe('random input on a live session', () => {
  it('never crashes: the session goes on or ends with a ProtocolError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 8 }), async (chunks) => {
        const { session, peer } = await rawPeerOf('server');
        session.on('stream', quiet);
        for (const chunk of chunks) peer.socket.write(chunk);
        // Then the peer hangs up: the session ends either way, and says why.
        peer.socket.end();
        const end = await session.closed;
        if (end.initiator === 'local') expect(end.error).toBeInstanceOf(ProtocolError);
        else expect([undefined, 'ERR_MUXADO_TRANSPORT', 'ERR_MUXADO_GOAWAY']).toContain(end.error?.code);
      }),
      { numRuns: 60, interruptAfterTimeLimit: 2000 },
    );
  });
});

describe('a malformed frame while draining', () => {
  it('still tells the peer PROTOCOL_ERROR, after the earlier GOAWAY(NO_ERROR)', async () => {
    const { session, peer } = await rawPeerOf('server');
    session.goAway(ErrorCode.NO_ERROR, 'draining');
    expect(await peer.nextOf(FrameType.GOAWAY)).toMatchObject({ errorCode: ErrorCode.NO_ERROR });
    peer.send(hex('0000 00 05 00000003'));
    await expectProtocolFailure(session, peer);
  });
});
