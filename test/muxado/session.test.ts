import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { FrameType, HEARTBEAT_PRIORITY, HEARTBEAT_STREAM_TYPE } from '../../src/muxado/constants.js';
import {
  ErrorCode,
  GoAwayError,
  InvalidArgumentError,
  SessionClosedError,
  StreamResetError,
  type Stream,
} from '../../src/muxado/index.js';
import { sha256 } from '../support/net.js';
import { patternBytes } from '../support/bytes.js';
import { quiet, rawPeerOf, readAll, sessionPair, streamOutcome, writeAll } from './helpers.js';

describe('opening and accepting streams', () => {
  it('a client-opened stream is accepted by the server, data flows both ways', async () => {
    const { client, server } = await sessionPair();
    const accepted = server.accept().then(quiet);
    const stream = quiet(client.open());
    stream.end('ping');
    const peer = await accepted;
    expect(peer.id).toBe(stream.id);
    expect((await readAll(peer)).toString()).toBe('ping');
    peer.end('pong');
    expect((await readAll(stream)).toString()).toBe('pong');
  });

  it('a server-opened stream reaches the client through the stream event', async () => {
    const { client, server } = await sessionPair();
    const arrived = once(client, 'stream') as Promise<[Stream]>;
    const stream = quiet(server.open());
    stream.end('from the server');
    const [peer] = await arrived;
    quiet(peer);
    expect(peer.id).toBe(stream.id);
    expect((await readAll(peer)).toString()).toBe('from the server');
  });

  it('carries the stream type and priority to the peer', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open({ type: 7, priority: 9 }));
    const peer = quiet(await server.accept());
    expect([peer.type, peer.priority]).toEqual([7, 9]);
    expect([stream.type, stream.priority]).toEqual([7, 9]);
  });

  it('rejects an extension stream type or a bad priority in open()', async () => {
    const { client } = await sessionPair();
    expect(() => client.open({ type: HEARTBEAT_STREAM_TYPE })).toThrow(InvalidArgumentError);
    expect(() => client.open({ type: -1 })).toThrow(InvalidArgumentError);
    expect(() => client.open({ priority: 2 ** 32 })).toThrow(InvalidArgumentError);
  });

  it('a client opens odd ids from 3, strictly increasing (seen by a raw peer)', async () => {
    const { session, peer } = await rawPeerOf('client');
    quiet(session.open());
    quiet(session.open({ priority: 5 }));
    quiet(session.open({ type: 12 }));
    const syns = [await peer.nextOf(FrameType.SYN), await peer.nextOf(FrameType.SYN), await peer.nextOf(FrameType.SYN)];
    expect(syns).toEqual([
      { type: FrameType.SYN, streamId: 3, fin: false },
      { type: FrameType.SYN, streamId: 5, fin: false, priority: 5 },
      { type: FrameType.SYN, streamId: 7, fin: false, streamType: 12 },
    ]);
  });

  it('a server opens even ids from 2 (seen by a raw peer)', async () => {
    const { session, peer } = await rawPeerOf('server');
    quiet(session.open());
    quiet(session.open());
    expect((await peer.nextOf(FrameType.SYN)).streamId).toBe(2);
    expect((await peer.nextOf(FrameType.SYN)).streamId).toBe(4);
  });

  it('with heartbeats on, the first id goes to the heartbeat stream and streams start at the next', async () => {
    const { session, peer } = await rawPeerOf('client', { heartbeat: true });
    quiet(session.open());
    expect(await peer.nextOf(FrameType.SYN)).toEqual({
      type: FrameType.SYN,
      streamId: 3,
      fin: false,
      priority: HEARTBEAT_PRIORITY,
      streamType: HEARTBEAT_STREAM_TYPE,
    });
    expect((await peer.nextOf(FrameType.SYN)).streamId).toBe(5);
  });

  it('a server accepts 3 as the first client stream, and data sent right after the SYN', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send(
      { type: FrameType.SYN, streamId: 3, fin: false },
      { type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.from('zero round trips') },
    );
    const stream = quiet(await session.accept());
    expect(stream.id).toBe(3);
    expect((await readAll(stream)).toString()).toBe('zero round trips');
  });

  it('a SYN with FIN opens a stream whose opener has already finished', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: true });
    const stream = quiet(await session.accept());
    expect((await readAll(stream)).length).toBe(0);
    // Our direction is still open.
    stream.end('still writable');
    const data = await peer.nextOf(FrameType.DATA, 3);
    expect(data.data.toString()).toBe('still writable');
  });

  it('never sends SYN with FIN: an empty stream is SYN then DATA+FIN', async () => {
    const { session, peer } = await rawPeerOf('client');
    quiet(session.open()).end();
    expect(await peer.nextOf(FrameType.SYN)).toEqual({ type: FrameType.SYN, streamId: 3, fin: false });
    expect(await peer.nextOf(FrameType.DATA, 3)).toEqual({ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) });
  });

  it('accept() waits for the next stream, takes queued streams first, in order', async () => {
    const { client, server } = await sessionPair();
    const waiting = server.accept();
    const a = quiet(client.open());
    expect(quiet(await waiting).id).toBe(a.id);
    const b = quiet(client.open());
    const c = quiet(client.open());
    b.write('b');
    c.write('c');
    // Both arrive before anyone asks: they wait in the backlog.
    const [first, second] = [quiet(await server.accept()), quiet(await server.accept())];
    expect([first.id, second.id]).toEqual([b.id, c.id]);
  });

  it('streams that waited in the backlog go to a stream listener added later', async () => {
    const { client, server } = await sessionPair();
    const ids = [quiet(client.open()).id, quiet(client.open()).id];
    // Wait until both SYNs are handled: the second stream's first byte proves it.
    const third = quiet(client.open());
    third.write('x');
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      server.on('stream', (stream) => {
        quiet(stream);
        seen.push(stream.id);
        if (stream.id === third.id) resolve();
      });
    });
    expect(seen).toEqual([...ids, third.id]);
  });
});

describe('half-close', () => {
  it('end() on the opener: the peer sees end and can still write back', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open());
    stream.end('request');
    const peer = quiet(await server.accept());
    expect((await readAll(peer)).toString()).toBe('request');
    expect(peer.writable).toBe(true);
    peer.write('response, ');
    peer.end('in two parts');
    expect((await readAll(stream)).toString()).toBe('response, in two parts');
    // Both directions ended cleanly: both streams close without error, and leave the tables.
    expect(await streamOutcome(stream)).toBeNull();
    expect(await streamOutcome(peer)).toBeNull();
    expect(client.openStreams).toBe(0);
    expect(server.openStreams).toBe(0);
  });

  it('end() on the acceptor: the opener sees end and can still write', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open());
    stream.write('hello');
    const peer = quiet(await server.accept());
    peer.end();
    const received = readAll(peer);
    await once(stream.resume(), 'end');
    stream.end(' after the peer finished');
    expect((await received).toString()).toBe('hello after the peer finished');
  });

  it('closes cleanly with no RST when both sides end', async () => {
    const { session, peer } = await rawPeerOf('client');
    const stream = quiet(session.open());
    stream.end('bye');
    stream.resume();
    await peer.nextOf(FrameType.DATA, 3);
    await peer.next((f) => f.type === FrameType.DATA && f.fin);
    peer.send({ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) });
    expect(await streamOutcome(stream)).toBeNull();
    await peer.barrier(2);
    expect(peer.received(FrameType.RST)).toEqual([]);
  });
});

describe('half-close with more than a window to send', () => {
  it.each([
    ['the opener', 'client'],
    ['the acceptor', 'server'],
  ] as const)('after %s ends, megabytes still flow the other way', async (_name, finisher) => {
    const { client, server } = await sessionPair();
    const opened = quiet(client.open());
    opened.write('open');
    const accepted = quiet(await server.accept());
    const [done, other] = finisher === 'client' ? [opened, accepted] : [accepted, opened];
    const data = patternBytes(2 * 1024 * 1024, 5);
    const received = readAll(done);
    done.end();
    // The finished side's peer has seen its FIN before sending the bulk.
    await once(other.resume(), 'end');
    await writeAll(other, data);
    const got = await received;
    expect(sha256(got.subarray(finisher === 'client' ? 0 : 4))).toBe(sha256(data));
    expect(await streamOutcome(other)).toBeNull();
    expect(await streamOutcome(done)).toBeNull();
  });
});

describe('reset', () => {
  it('reset(code) reaches the peer as a StreamResetError with that code', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open());
    stream.write('x');
    const peer = quiet(await server.accept());
    const outcome = streamOutcome(peer);
    stream.reset(ErrorCode.INTERNAL_ERROR);
    const error = await outcome;
    expect(error).toBeInstanceOf(StreamResetError);
    expect(error).toMatchObject({ code: 'ERR_MUXADO_STREAM_RESET', errorCode: ErrorCode.INTERNAL_ERROR, remote: true });
  });

  it('reset() defaults to CANCEL, ends the local stream without an error, and sends one RST', async () => {
    const { session, peer } = await rawPeerOf('client');
    const stream = quiet(session.open());
    const outcome = streamOutcome(stream);
    stream.reset();
    stream.reset();
    expect(await outcome).toBeNull();
    expect(await peer.nextOf(FrameType.RST, 3)).toEqual({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.CANCEL });
    await peer.barrier(2);
    expect(peer.received(FrameType.RST)).toHaveLength(1);
    expect(session.openStreams).toBe(0);
  });

  it('rejects a code outside ErrorCode', async () => {
    const { client } = await sessionPair();
    const stream = quiet(client.open());
    expect(() => stream.reset(8 as ErrorCode)).toThrow(InvalidArgumentError);
  });

  it('a peer reset drops unread data and fails pending writes', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('unread') });
    const stream = quiet(await session.accept());
    const outcome = streamOutcome(stream);
    peer.send({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.REFUSED_STREAM });
    const error = await outcome;
    expect(error).toMatchObject({ errorCode: ErrorCode.REFUSED_STREAM, remote: true });
    expect(stream.destroyed).toBe(true);
    expect(session.openStreams).toBe(0);
  });

  it('destroying a stream that is still open sends RST(CANCEL)', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open());
    stream.write('x');
    const peer = quiet(await server.accept());
    const outcome = streamOutcome(peer);
    stream.destroy();
    expect(await outcome).toMatchObject({ errorCode: ErrorCode.CANCEL, remote: true });
  });
});

describe('goAway', () => {
  it('the peer gets a goaway event and open() throws GoAwayError; existing streams keep working', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open());
    stream.write('before ');
    const peer = quiet(await server.accept());
    const goaway = once(client, 'goaway');
    server.goAway(ErrorCode.NO_ERROR, 'draining');
    const [info] = await goaway;
    expect(info).toEqual({ lastStreamId: stream.id, errorCode: ErrorCode.NO_ERROR, message: 'draining' });
    expect(() => client.open()).toThrow(GoAwayError);
    // Both directions of the stream opened before the GOAWAY still work.
    stream.end('and after');
    expect((await readAll(peer)).toString()).toBe('before and after');
    peer.end('reply');
    expect((await readAll(stream)).toString()).toBe('reply');
    // And the session itself still works the other way.
    const arrived = once(client, 'stream');
    quiet(server.open()).end('server may still open');
    const [reverse] = (await arrived) as [Stream];
    quiet(reverse);
    expect((await readAll(reverse)).toString()).toBe('server may still open');
  });

  it('a SYN that arrives after GOAWAY gets RST(REFUSED_STREAM); streams opened before keep working', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false });
    const stream = quiet(await session.accept());
    session.goAway();
    const goaway = await peer.nextOf(FrameType.GOAWAY);
    expect(goaway).toMatchObject({ lastStreamId: 3, errorCode: ErrorCode.NO_ERROR });
    peer.send({ type: FrameType.SYN, streamId: 5, fin: false });
    expect(await peer.nextOf(FrameType.RST, 5)).toEqual({ type: FrameType.RST, streamId: 5, errorCode: ErrorCode.REFUSED_STREAM });
    // The stream opened before still goes both ways.
    peer.send({ type: FrameType.DATA, streamId: 3, fin: false, data: Buffer.from('still here') });
    stream.write('me too');
    expect((await peer.nextOf(FrameType.DATA, 3)).data.toString()).toBe('me too');
    const [chunk] = (await once(stream, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('still here');
    expect(session.isClosed).toBe(false);
  });

  it('streams the peer did not process (above its last id) fail with GoAwayError', async () => {
    const { session, peer } = await rawPeerOf('client');
    const processed = quiet(session.open());
    const refused = quiet(session.open());
    const outcome = streamOutcome(refused);
    await peer.nextOf(FrameType.SYN, 5);
    peer.send({ type: FrameType.GOAWAY, lastStreamId: 3, errorCode: ErrorCode.NO_ERROR, debug: Buffer.alloc(0) });
    expect(await outcome).toBeInstanceOf(GoAwayError);
    expect(processed.destroyed).toBe(false);
  });

  it('only the first goAway() sends; a bad code throws', async () => {
    const { session, peer } = await rawPeerOf('server');
    expect(() => session.goAway(9 as ErrorCode)).toThrow(InvalidArgumentError);
    // The barrier's heartbeat stream must exist before GOAWAY refuses new streams.
    await peer.barrier(3);
    session.goAway(ErrorCode.NO_ERROR, 'one');
    session.goAway(ErrorCode.NO_ERROR, 'two');
    await peer.barrier(3);
    expect(peer.received(FrameType.GOAWAY).map((f) => f.debug.toString())).toEqual(['one']);
  });
});

describe('close', () => {
  it('the peer sees a clean remote close; streams on both sides fail with SessionClosedError', async () => {
    const { client, server } = await sessionPair();
    const stream = quiet(client.open());
    stream.write('x');
    const peer = quiet(await server.accept());
    const localOutcome = streamOutcome(stream);
    const peerOutcome = streamOutcome(peer);
    const pendingAccept = server.accept();
    client.close();
    expect(await client.closed).toEqual({ initiator: 'local' });
    const end = await server.closed;
    expect(end.initiator).toBe('remote');
    expect(end.error).toBeUndefined();
    expect(end.goAway).toMatchObject({ errorCode: ErrorCode.NO_ERROR });
    expect(await localOutcome).toBeInstanceOf(SessionClosedError);
    expect(await peerOutcome).toBeInstanceOf(SessionClosedError);
    await expect(pendingAccept).rejects.toBeInstanceOf(SessionClosedError);
    await expect(server.accept()).rejects.toBeInstanceOf(SessionClosedError);
    expect(() => client.open()).toThrow(SessionClosedError);
    expect(() => server.open()).toThrow(SessionClosedError);
    expect([client.isClosed, server.isClosed]).toEqual([true, true]);
  });

  it('sends GOAWAY(NO_ERROR) naming the last stream it processed, then closes the transport', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.SYN, streamId: 7, fin: false });
    quiet(await session.accept());
    quiet(await session.accept());
    const closeEvent = once(session, 'close');
    session.close();
    expect(await peer.nextOf(FrameType.GOAWAY)).toMatchObject({ lastStreamId: 7, errorCode: ErrorCode.NO_ERROR });
    await peer.waitEnded();
    expect((await closeEvent)[0]).toEqual({ initiator: 'local' });
  });

  it('a transport that closes without GOAWAY ends the session with TransportError', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.socket.end();
    const end = await session.closed;
    expect(end.initiator).toBe('remote');
    expect(end.error?.code).toBe('ERR_MUXADO_TRANSPORT');
  });

  it('a peer GOAWAY with an error code, then close, ends the session with that error', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.send({ type: FrameType.GOAWAY, lastStreamId: 0, errorCode: ErrorCode.INTERNAL_ERROR, debug: Buffer.from('it broke') });
    peer.socket.end();
    const end = await session.closed;
    expect(end).toMatchObject({ initiator: 'remote', goAway: { errorCode: ErrorCode.INTERNAL_ERROR, message: 'it broke' } });
    expect(end.error).toBeInstanceOf(GoAwayError);
    expect(end.error?.message).toContain('it broke');
  });

  it('emits error only when someone listens, and never throws from close()', async () => {
    const { session, peer } = await rawPeerOf('client');
    const errors: Error[] = [];
    session.on('error', (e) => errors.push(e));
    peer.socket.destroy();
    await session.closed;
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['ERR_MUXADO_TRANSPORT']);
    session.close();
  });
});

describe('streams the application has not taken yet', () => {
  // A stream that fails while nobody holds it must not crash the process with
  // an unhandled 'error' (vitest reports an uncaught exception as a failure).

  it('a peer RST on a stream waiting in the backlog drops it quietly', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.SYN, streamId: 5, fin: false });
    await peer.barrier(7);
    peer.send({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.CANCEL });
    await peer.barrier(7);
    // The reset stream left the backlog; the next one is still there.
    expect((await session.accept()).id).toBe(5);
    expect(session.openStreams).toBe(1);
  });

  it('the session ending while streams wait in the backlog does not crash', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false });
    await peer.barrier(5);
    session.close();
    await peer.waitEnded();
    expect((await session.closed).initiator).toBe('local');
  });

  it('a stream reset in the same chunk as its SYN, while accept() waits, does not crash', async () => {
    const { session, peer } = await rawPeerOf('server');
    const accepted = session.accept();
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.RST, streamId: 3, errorCode: ErrorCode.CANCEL });
    const stream = await accepted;
    expect(stream.id).toBe(3);
    // It failed before the application could listen: the failure is still visible.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stream.destroyed).toBe(true);
    expect(stream.errored).toBeInstanceOf(StreamResetError);
  });
});

describe('write callbacks when a stream ends early', () => {
  it('a peer RST calls back the write in flight and the writes queued behind it', async () => {
    const { session, peer } = await rawPeerOf('client');
    const stream = quiet(session.open());
    const called: string[] = [];
    // More than the window: the first write stays in flight, the second queues behind it.
    stream.write(Buffer.alloc(200_000), () => called.push('first'));
    stream.write(Buffer.from('second'), () => called.push('second'));
    const ended = new Promise<void>((resolve) => stream.end(() => resolve()));
    await peer.nextOf(FrameType.DATA, 3);
    peer.send({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.CANCEL });
    expect(await streamOutcome(stream)).toBeInstanceOf(StreamResetError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(called).toEqual(['first', 'second']);
    await ended;
  });

  it('reset() calls back the write in flight', async () => {
    const { session } = await rawPeerOf('client');
    const stream = quiet(session.open());
    const first = new Promise<void>((resolve) => stream.write(Buffer.alloc(200_000), () => resolve()));
    const second = new Promise<void>((resolve) => stream.write(Buffer.from('x'), () => resolve()));
    stream.reset();
    await Promise.all([first, second]);
  });
});

describe('streams complete on the wire when the session ends', () => {
  it('a stream whose both directions had finished keeps its unread data, then ends cleanly', async () => {
    const { session, peer } = await rawPeerOf('client');
    const stream = session.open();
    const outcome = streamOutcome(stream);
    stream.pause();
    stream.end('request');
    await peer.next((f) => f.type === FrameType.DATA && f.streamId === 3 && f.fin, 'the FIN of stream 3');
    // The reply, its FIN, GOAWAY and the end of the transport, all at once.
    peer.send(
      { type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.from('response') },
      { type: FrameType.GOAWAY, lastStreamId: 3, errorCode: ErrorCode.NO_ERROR, debug: Buffer.alloc(0) },
    );
    peer.socket.end();
    expect((await session.closed).error).toBeUndefined();
    // Read only now: everything the peer sent is still there.
    expect((await readAll(stream)).toString()).toBe('response');
    expect(await outcome).toBeNull();
  });

  it('a stream still sending when the session ends fails with SessionClosedError', async () => {
    const { session, peer } = await rawPeerOf('client');
    const stream = session.open();
    const outcome = streamOutcome(stream);
    stream.write('unfinished');
    await peer.nextOf(FrameType.DATA, 3);
    peer.send({ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.from('response') });
    peer.send({ type: FrameType.GOAWAY, lastStreamId: 3, errorCode: ErrorCode.NO_ERROR, debug: Buffer.alloc(0) });
    peer.socket.end();
    expect(await outcome).toBeInstanceOf(SessionClosedError);
  });
});

describe('quirks of the Go reference peer', () => {
  it('a repeated empty DATA+FIN (Close() after HalfClose()) is tolerated; the stream ends cleanly', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false }, { type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.from('half') });
    const stream = await session.accept();
    const outcome = streamOutcome(stream);
    peer.send({ type: FrameType.DATA, streamId: 3, fin: true, data: Buffer.alloc(0) });
    await peer.barrier(5);
    expect(peer.received(FrameType.RST)).toEqual([]);
    expect((await readAll(stream)).toString()).toBe('half');
    stream.end();
    expect(await outcome).toBeNull();
  });

  it('a GOAWAY cut short by the end of the transport, its 8-byte body complete, is a clean close', async () => {
    const { session, peer } = await rawPeerOf('client');
    // The header claims 20 bytes of payload; only the 8-byte body follows, then EOF.
    peer.socket.write(Buffer.from('0014000600000000' + '00000003' + '00000000', 'hex'));
    peer.socket.end();
    const end = await session.closed;
    expect(end).toMatchObject({ initiator: 'remote', goAway: { lastStreamId: 3, errorCode: ErrorCode.NO_ERROR } });
    expect(end.error).toBeUndefined();
  });

  it('a GOAWAY followed by a TCP reset (Close() with our frames unread) is still a clean close', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.socket.write(Buffer.from('0014000600000000' + '00000003' + '00000000', 'hex'), () => peer.socket.resetAndDestroy());
    const end = await session.closed;
    expect(end).toMatchObject({ initiator: 'remote', goAway: { errorCode: ErrorCode.NO_ERROR } });
    expect(end.error).toBeUndefined();
  });

  it('a TCP reset with no GOAWAY before it is a transport error', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.socket.resetAndDestroy();
    const end = await session.closed;
    expect(end.error?.code).toBe('ERR_MUXADO_TRANSPORT');
  });

  it('a GOAWAY cut short before its 8-byte body is complete is a transport error', async () => {
    const { session, peer } = await rawPeerOf('client');
    peer.socket.write(Buffer.from('0014000600000000' + '000000', 'hex'));
    peer.socket.end();
    const end = await session.closed;
    expect(end.error?.code).toBe('ERR_MUXADO_TRANSPORT');
  });
});
