/**
 * A header that is already invalid ends the session as soon as its 8 bytes
 * arrive: the session never waits for a payload the peer may never send
 * (before, a header claiming 16 KiB of DATA for a stream never opened held
 * the session until the heartbeat gave up, ~13 s).
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { ErrorCode, ProtocolError, type Session, type SessionEnd } from '../../src/muxado/index.js';
import { quiet, rawPeerOf, type RawPeer } from './helpers.js';
import { seededBytes } from '../support/random.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Far more than a session needs to judge one header, far less than any timeout it has. */
const PROMPTLY_MS = 1000;

/** The session's end if it comes within `ms`, else null; and how long it took. */
async function endWithin(session: Session, ms: number): Promise<{ end: SessionEnd | null; elapsedMs: number }> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  const end = await Promise.race([session.closed, deadline]);
  clearTimeout(timer);
  return { end, elapsedMs: performance.now() - start };
}

/** The session ended promptly with a ProtocolError, and told the peer with GOAWAY(PROTOCOL_ERROR). */
async function expectPromptProtocolError(session: Session, peer: RawPeer, what = ''): Promise<void> {
  const { end, elapsedMs } = await endWithin(session, PROMPTLY_MS);
  expect(end, `${what} the session is still open after ${PROMPTLY_MS} ms`).not.toBeNull();
  expect(end!.initiator, what).toBe('local');
  expect(end!.error, what).toBeInstanceOf(ProtocolError);
  expect(elapsedMs, what).toBeLessThan(PROMPTLY_MS);
  const goaway = await peer.nextOf(FrameType.GOAWAY);
  expect(goaway.errorCode, what).toBe(ErrorCode.PROTOCOL_ERROR);
  expect(goaway.debug.toString(), what).toBe(end!.error!.message);
  await peer.waitEnded();
}


describe('an invalid header ends the session before its payload arrives', () => {
  // Each is sent as a header alone: the payload it announces never follows.
  // The server session is fresh (heartbeat off): no stream has been opened.
  it.each([
    ['an unknown frame type (0x5) claiming 16 KiB', '3fff 00 05 00000003'],
    ['an unknown frame type (0x1f) claiming 4 KiB', '1000 00 1f 00000003'],
    ['DATA for a peer stream never opened, claiming 16 KiB', '3fff 00 03 00000009'],
    ['DATA for a stream of ours never opened, claiming 16 KiB', '3fff 00 03 00000002'],
    ['DATA+FIN for a stream never opened, claiming 1 byte', '0001 01 03 00000003'],
    ['WNDINC for a stream never opened', '0004 00 04 0000000b'],
    ['RST for a stream never opened', '0004 00 02 0000000d'],
    ['a SYN of the receiver\'s own parity (with priority and type)', '0008 06 01 00000008'],
    ['a SYN for id 1, which the reference treats as used', '0008 06 01 00000001'],
    ['an RST claiming 16 KiB (it must be 4)', '3fff 00 02 00000003'],
    ['a SYN whose flags say 0 bytes claiming 16 KiB', '3fff 00 01 00000003'],
    ['a GOAWAY for a stream (its id must be 0) claiming 16 KiB', '3fff 00 06 00000003'],
  ])('%s', async (_name, header) => {
    const { session, peer } = await rawPeerOf('server');
    peer.send(hex(header));
    await expectPromptProtocolError(session, peer);
  });

  it('a SYN whose id is not above the peer\'s last, after streams 3 and 5', async () => {
    const { session, peer } = await rawPeerOf('server');
    session.on('stream', quiet);
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.SYN, streamId: 5, fin: false });
    await peer.barrier(7);
    expect(session.openStreams).toBe(2);
    peer.send(hex('0008 06 01 00000005'));
    await expectPromptProtocolError(session, peer);
  });

  it('a SYN of the wrong parity to a client', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.send(hex('0008 06 01 00000003'));
    await expectPromptProtocolError(session, peer);
  });

  it('DATA for a stream never opened, after a stream that is live', async () => {
    // Streams 3 and 7 (the barrier's) are open and 9 was never opened: only the id tells them apart.
    const { session, peer } = await rawPeerOf('server');
    session.on('stream', quiet);
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false });
    await peer.barrier(7);
    peer.send(hex('3fff 00 03 00000009'));
    await expectPromptProtocolError(session, peer);
  });
});

describe('DATA for a stream that was opened and is gone still waits for its payload', () => {
  it('is read in pieces, answered with one RST(STREAM_CLOSED), and the session goes on', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: true });
    const stream = quiet(await session.accept());
    stream.resume();
    stream.end();
    await once(stream, 'close');
    expect(session.openStreams).toBe(0);
    // 16 KiB announced, sent in three pieces: the header is no reason to end the session.
    const payload = Buffer.alloc(0x3fff, 0x61);
    peer.send(hex('3fff 00 03 00000003'));
    peer.socket.write(payload.subarray(0, 5000));
    peer.socket.write(payload.subarray(5000, 9000));
    peer.socket.write(payload.subarray(9000));
    await peer.barrier(5);
    expect(peer.received(FrameType.RST, 3)).toEqual([{ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.STREAM_CLOSED }]);
    expect(session.isClosed).toBe(false);
  });
});

describe('random bytes from the peer end the session promptly', () => {
  it('4 KiB of random bytes, 200 seeds, each to a fresh session (servers and clients)', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const what = `seed ${seed}:`;
      const { session, peer } = await rawPeerOf(seed % 2 === 0 ? 'server' : 'client');
      session.on('stream', quiet);
      // The peer's socket stays open for writing: nothing but the bytes themselves can end the session.
      peer.socket.write(seededBytes(4096, seed));
      await expectPromptProtocolError(session, peer, what);
      peer.socket.destroy();
    }
  });
});
