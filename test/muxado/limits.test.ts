import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { ErrorCode, LimitError, StreamResetError, type Stream } from '../../src/muxado/index.js';
import { sha256 } from '../support/net.js';
import { patternBytes } from '../support/bytes.js';
import { quiet, rawPeerOf, readAll, sessionPair, streamOutcome, writeAll } from './helpers.js';

describe('maxStreams', () => {
  it("refuses the peer's SYN beyond the limit with RST(REFUSED_STREAM) and a 'refused' event", async () => {
    const { session, peer } = await rawPeerOf('server', { maxStreams: 2 });
    const refused: Array<[LimitError, number]> = [];
    session.on('refused', (error, id) => refused.push([error, id]));
    peer.send(
      { type: FrameType.SYN, streamId: 3, fin: false },
      { type: FrameType.SYN, streamId: 5, fin: false },
      { type: FrameType.SYN, streamId: 7, fin: false },
    );
    expect(await peer.nextOf(FrameType.RST)).toEqual({ type: FrameType.RST, streamId: 7, errorCode: ErrorCode.REFUSED_STREAM });
    expect(refused).toHaveLength(1);
    expect(refused[0]![1]).toBe(7);
    expect(refused[0]![0]).toBeInstanceOf(LimitError);
    expect(refused[0]![0].message).toMatch(/maxStreams/);
    // Late frames for the refused stream are dropped quietly, the session goes on.
    peer.send({ type: FrameType.DATA, streamId: 7, fin: false, data: Buffer.from('late') });
    await peer.barrier(9);
    expect(peer.received(FrameType.RST)).toHaveLength(1);
    expect(session.openStreams).toBe(2);

    // Once a stream ends, there is room again.
    const first = quiet(await session.accept());
    quiet(await session.accept());
    first.reset();
    await peer.nextOf(FrameType.RST, 3);
    peer.send({ type: FrameType.SYN, streamId: 11, fin: false });
    expect((await session.accept()).id).toBe(11);
  });

  it('a stream refused by the peer fails with StreamResetError(REFUSED_STREAM)', async () => {
    const { client, server } = await sessionPair({}, { maxStreams: 1 });
    const refused = once(server, 'refused');
    const a = quiet(client.open());
    const b = client.open();
    const outcome = streamOutcome(b);
    b.write('x');
    const error = await outcome;
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({ errorCode: ErrorCode.REFUSED_STREAM, remote: true });
    expect((await refused)[1]).toBe(b.id);
    // The stream within the limit is untouched.
    a.end('fine');
    expect((await readAll(quiet(await server.accept()))).toString()).toBe('fine');
  });

  it('open() beyond the limit throws LimitError; ending a stream makes room', async () => {
    const { client, server } = await sessionPair({ maxStreams: 2 });
    const a = quiet(client.open());
    quiet(client.open());
    expect(() => client.open()).toThrow(LimitError);
    expect(() => client.open()).toThrow(/maxStreams/);
    const closed = once(a, 'close');
    a.reset();
    await closed;
    quiet(client.open()).end('room again');
    // The server saw the first two and now the third.
    const streams = [quiet(await server.accept()), quiet(await server.accept()), quiet(await server.accept())];
    expect((await readAll(streams[2]!)).toString()).toBe('room again');
  });

  it("counts each side's streams separately", async () => {
    const { client, server } = await sessionPair({ maxStreams: 1 }, { maxStreams: 1 });
    client.on('stream', quiet);
    quiet(client.open());
    // The server's own stream does not count against the client's.
    const opened = once(client, 'stream');
    quiet(server.open()).write('x');
    await opened;
    expect(client.openStreams).toBe(2);
  });
});

describe('acceptBacklog', () => {
  it('fills while nobody accepts, then refuses; the reader never stalls and other streams keep flowing', async () => {
    const { client, server } = await sessionPair({}, { acceptBacklog: 2 });
    const refused = once(server, 'refused');
    const waiting = [quiet(client.open()), quiet(client.open())];
    const payloads = [patternBytes(50_000, 1), patternBytes(60_000, 2)];
    waiting.forEach((s, i) => s.end(payloads[i]));
    const third = client.open();
    const thirdOutcome = streamOutcome(third);
    third.write('refused');
    expect(await thirdOutcome).toMatchObject({ errorCode: ErrorCode.REFUSED_STREAM });
    const [error, id] = await refused;
    expect(id).toBe(third.id);
    expect((error as LimitError).message).toMatch(/acceptBacklog/);

    // The session's reader is not blocked by the full backlog: a stream the
    // server opens moves megabytes both ways meanwhile.
    client.on('stream', (s: Stream) => {
      quiet(s);
      s.pipe(s);
    });
    const echo = quiet(server.open());
    const data = patternBytes(3 * 1024 * 1024, 3);
    const [back] = await Promise.all([readAll(echo), writeAll(echo, data)]);
    expect(sha256(back)).toBe(sha256(data));

    // The backlog streams kept their data.
    const accepted = [await server.accept(), await server.accept()].map(quiet);
    expect(accepted.map((s) => s.id)).toEqual(waiting.map((s) => s.id));
    const received = await Promise.all(accepted.map(readAll));
    expect(received.map(sha256)).toEqual(payloads.map(sha256));
  });

  it('does not apply while accept() waits or a stream listener is attached', async () => {
    const { client, server } = await sessionPair({}, { acceptBacklog: 1 });
    const seen: number[] = [];
    server.on('stream', (s) => {
      quiet(s).resume();
      seen.push(s.id);
    });
    const opened = Array.from({ length: 5 }, () => quiet(client.open()));
    const last = opened[4]!;
    last.write('x');
    await new Promise<void>((resolve) => {
      server.on('stream', (s) => {
        if (s.id === last.id) resolve();
      });
    });
    expect(seen).toEqual(opened.map((s) => s.id));
  });
});
