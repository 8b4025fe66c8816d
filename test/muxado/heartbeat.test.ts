import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FrameType, HEARTBEAT_PRIORITY, HEARTBEAT_STREAM_TYPE } from '../../src/muxado/constants.js';
import { ErrorCode, HeartbeatTimeoutError } from '../../src/muxado/index.js';
import { u32 } from '../support/bytes.js';
import { quiet, rawPeerOf, sessionPair, type RawPeer } from './helpers.js';

// Timing is the point of these tests, so they wait on the clock; the values
// are small so the file stays fast.
const INTERVAL = 50;
const TOLERANCE = 200;
const fast = { heartbeat: true, heartbeatInterval: INTERVAL, heartbeatTolerance: TOLERANCE };

/** Makes a raw peer answer the session's heartbeats, as the reference does. */
function echoHeartbeats(peer: RawPeer, streamId: number): void {
  peer.socket.on('data', () => {
    for (const frame of peer.received(FrameType.DATA, streamId)) {
      if (echoed.has(frame)) continue;
      echoed.add(frame);
      peer.send(
        { type: FrameType.WNDINC, streamId, increment: frame.data.length },
        { type: FrameType.DATA, streamId, fin: false, data: frame.data },
      );
    }
  });
  const echoed = new Set<object>();
}

describe('heartbeat', () => {
  it('opens a heartbeat stream first and sends a 4-byte id every interval', async () => {
    const { peer } = await rawPeerOf('server', fast);
    expect(await peer.nextOf(FrameType.SYN)).toEqual({
      type: FrameType.SYN,
      streamId: 2,
      fin: false,
      priority: HEARTBEAT_PRIORITY,
      streamType: HEARTBEAT_STREAM_TYPE,
    });
    const beat = await peer.nextOf(FrameType.DATA, 2);
    expect(beat.data.length).toBe(4);
    expect(beat.fin).toBe(false);
  });

  it('ends the session with HeartbeatTimeoutError when the peer never answers, within interval + tolerance', async () => {
    const { session, peer } = await rawPeerOf('server', fast);
    const started = performance.now();
    const end = await session.closed;
    const elapsed = performance.now() - started;
    expect(end.initiator).toBe('local');
    expect(end.error).toBeInstanceOf(HeartbeatTimeoutError);
    expect(end.error?.code).toBe('ERR_MUXADO_HEARTBEAT_TIMEOUT');
    // Silence is measured from the start; the check runs once per interval.
    expect(elapsed).toBeGreaterThanOrEqual(INTERVAL + TOLERANCE - 5);
    expect(elapsed).toBeLessThan(INTERVAL + TOLERANCE + INTERVAL + 250);
    // The peer is told why.
    const goaway = await peer.nextOf(FrameType.GOAWAY);
    expect(goaway.errorCode).toBe(ErrorCode.INTERNAL_ERROR);
    expect(goaway.debug.toString()).toMatch(/heartbeat/);
    await peer.waitEnded();
    // Only one heartbeat goes out while the previous one is unanswered.
    expect(peer.received(FrameType.DATA, 2)).toHaveLength(1);
  });

  it('a peer that echoes keeps the session alive well past interval + tolerance, and rtt is measured', async () => {
    const { session, peer } = await rawPeerOf('client', fast);
    echoHeartbeats(peer, 3);
    await sleep(3 * (INTERVAL + TOLERANCE));
    expect(session.isClosed).toBe(false);
    expect(session.rtt).toBeGreaterThanOrEqual(0);
    // It kept sending: several beats went out, each after the last was answered.
    expect(peer.received(FrameType.DATA, 3).length).toBeGreaterThan(3);
  });

  it('two sessions keep each other alive', async () => {
    const { client, server } = await sessionPair(fast, fast);
    await sleep(3 * (INTERVAL + TOLERANCE));
    expect([client.isClosed, server.isClosed]).toEqual([false, false]);
    expect(client.rtt).toBeGreaterThanOrEqual(0);
    expect(server.rtt).toBeGreaterThanOrEqual(0);
    // Heartbeat streams are no application's business.
    expect([client.openStreams, server.openStreams]).toEqual([0, 0]);
  });

  it('heartbeats get through while a stream moves data flat out', async () => {
    const { client, server } = await sessionPair(fast, fast);
    const stream = quiet(client.open());
    const peer = quiet(await server.accept());
    peer.resume();
    const chunk = Buffer.alloc(64 * 1024);
    const until = performance.now() + 3 * (INTERVAL + TOLERANCE);
    while (performance.now() < until) {
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    expect([client.isClosed, server.isClosed]).toEqual([false, false]);
  });

  it("echoes the peer's heartbeat ids, even with its own heartbeat off, and returns the window", async () => {
    const { session, peer } = await rawPeerOf('server', { heartbeat: false });
    const seen: unknown[] = [];
    session.on('stream', (s) => seen.push(s));
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false, priority: HEARTBEAT_PRIORITY, streamType: HEARTBEAT_STREAM_TYPE });
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: u32(0xdeadbeef) });
    expect(await peer.nextOf(FrameType.DATA, 3)).toEqual({ type: FrameType.DATA, streamId: 3, fin: false, data: u32(0xdeadbeef) });
    expect(await peer.nextOf(FrameType.WNDINC, 3)).toEqual({ type: FrameType.WNDINC, streamId: 3, increment: 4 });
    // Ids that arrive in pieces come back whole, in order.
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from([0, 0, 0]) });
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from([7, 0, 0, 0, 8]) });
    const echoed: Buffer[] = [];
    while (Buffer.concat(echoed).length < 8) echoed.push((await peer.nextOf(FrameType.DATA, 3)).data);
    expect(Buffer.concat(echoed)).toEqual(Buffer.from([0, 0, 0, 7, 0, 0, 0, 8]));
    // The heartbeat stream is never an application stream.
    expect(seen).toEqual([]);
    expect(session.openStreams).toBe(0);
  });

  it('refuses a second heartbeat stream and unknown extension streams with RST(STREAM_CLOSED)', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send(
      { type: FrameType.SYN, streamId: 3, fin: false, priority: HEARTBEAT_PRIORITY, streamType: HEARTBEAT_STREAM_TYPE },
      { type: FrameType.SYN, streamId: 5, fin: false, priority: HEARTBEAT_PRIORITY, streamType: HEARTBEAT_STREAM_TYPE },
      { type: FrameType.SYN, streamId: 7, fin: false, streamType: 0xffffff00 },
    );
    expect(await peer.nextOf(FrameType.RST, 5)).toMatchObject({ errorCode: ErrorCode.STREAM_CLOSED });
    expect(await peer.nextOf(FrameType.RST, 7)).toMatchObject({ errorCode: ErrorCode.STREAM_CLOSED });
    expect(session.isClosed).toBe(false);
    expect(session.openStreams).toBe(0);
  });

  it('ends the session when the peer resets the heartbeat stream: liveness could not be checked any more', async () => {
    const { session, peer } = await rawPeerOf('server', fast);
    await peer.nextOf(FrameType.SYN, 2);
    peer.send({ type: FrameType.RST, streamId: 2, errorCode: ErrorCode.STREAM_CLOSED });
    const end = await session.closed;
    expect(end.initiator).toBe('local');
    expect(end.error?.code).toBe('ERR_MUXADO_HEARTBEAT_REFUSED');
    const goaway = await peer.nextOf(FrameType.GOAWAY);
    expect(goaway.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});
