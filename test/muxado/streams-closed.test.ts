/**
 * Knowing when streams are done without polling: the session's 'streamclose'
 * event and `streamsClosed()`, as a draining server uses them.
 */
import { once } from 'node:events';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { ErrorCode, InvalidArgumentError, type Session, type Stream } from '../../src/muxado/index.js';
import { quiet, rawPeerOf, readAll, sessionPair, streamOutcome } from './helpers.js';

/** A promise and whether it has settled, to show one that is still pending. */
function track(promise: Promise<void>): { promise: Promise<void>; settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { promise, settled: () => settled };
}

/** Ends a stream cleanly both ways: FIN from each side, each side reading to the end. */
async function finishBoth(local: Stream, remote: Stream): Promise<void> {
  local.end();
  remote.end();
  await Promise.all([readAll(local), readAll(remote), once(local, 'close'), once(remote, 'close')]);
}

/** Opens a stream from `opener` and returns both ends. */
async function openPair(opener: Session, acceptor: Session): Promise<[Stream, Stream]> {
  const local = quiet(opener.open());
  local.write('x');
  const remote = quiet(await acceptor.accept());
  return [local, remote];
}

describe("the 'streamclose' event", () => {
  it('fires once per stream as it leaves the table, counted out of openStreams, before its own close', async () => {
    const { client, server } = await sessionPair();
    const seen: Array<{ id: number; open: number; streamClosed: boolean }> = [];
    client.on('streamclose', (stream) => seen.push({ id: stream.id, open: client.openStreams, streamClosed: stream.closed }));
    const [a, aRemote] = await openPair(client, server);
    const [b, bRemote] = await openPair(client, server);
    const [c, cRemote] = await openPair(server, client);
    expect(client.openStreams).toBe(3);
    await finishBoth(a, aRemote);
    expect(seen).toEqual([{ id: a.id, open: 2, streamClosed: false }]);
    // A reset by the peer, then one by this side.
    bRemote.reset(ErrorCode.CANCEL);
    await streamOutcome(b);
    cRemote.reset();
    await streamOutcome(cRemote);
    expect(seen).toEqual([
      { id: a.id, open: 2, streamClosed: false },
      { id: b.id, open: 1, streamClosed: false },
      { id: c.id, open: 0, streamClosed: false },
    ]);
  });

  it('fires for every stream still open when the session ends, before its close event', async () => {
    const { client, server } = await sessionPair();
    const [a] = await openPair(client, server);
    const [b] = await openPair(server, client);
    const order: string[] = [];
    client.on('streamclose', (stream) => order.push(`stream ${stream.id}`));
    client.on('close', () => order.push('close'));
    client.close();
    expect(order).toEqual([`stream ${a.id}`, `stream ${b.id}`, 'close']);
    expect(client.openStreams).toBe(0);
  });

  it('does not fire for the heartbeat stream, nor for a stream refused before it was open', async () => {
    const { session, peer } = await rawPeerOf('server', { acceptBacklog: 1 });
    const seen: number[] = [];
    session.on('streamclose', (stream) => seen.push(stream.id));
    // The barrier opens the peer's heartbeat stream, 3.
    await peer.barrier(3);
    peer.send({ type: FrameType.SYN, streamId: 5, fin: false }, { type: FrameType.SYN, streamId: 7, fin: false });
    expect(await peer.nextOf(FrameType.RST, 7)).toMatchObject({ errorCode: ErrorCode.REFUSED_STREAM });
    peer.send({ type: FrameType.RST, streamId: 5, errorCode: ErrorCode.CANCEL });
    await peer.barrier(3);
    expect(seen).toEqual([5]);
    // The heartbeat stream ends too: still no event. A stream opened after it shows the reset was handled.
    peer.send({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.CANCEL }, { type: FrameType.SYN, streamId: 9, fin: false });
    expect(quiet(await session.accept()).id).toBe(9);
    expect(seen).toEqual([5]);
  });
});

describe('streamsClosed()', () => {
  it('resolves at once when no stream is open', async () => {
    const { client } = await sessionPair();
    await client.streamsClosed();
    await client.streamsClosed({ except: [] });
  });

  it('waits for every open stream of both sides, then resolves', async () => {
    const { client, server } = await sessionPair();
    const [a, aRemote] = await openPair(client, server);
    const [b, bRemote] = await openPair(server, client);
    const done = track(client.streamsClosed());
    await finishBoth(a, aRemote);
    await turn();
    expect(done.settled()).toBe(false);
    await finishBoth(b, bRemote);
    await done.promise;
    expect(client.openStreams).toBe(0);
  });

  it('does not wait for the streams in `except` (a control stream), which stay open', async () => {
    const { client, server } = await sessionPair();
    const [control] = await openPair(client, server);
    const [work, workRemote] = await openPair(client, server);
    const done = track(client.streamsClosed({ except: [control] }));
    await turn();
    expect(done.settled()).toBe(false);
    await finishBoth(work, workRemote);
    await done.promise;
    expect(client.openStreams).toBe(1);
    expect(control.destroyed).toBe(false);
    // With only the excepted stream open, a new call resolves at once.
    await client.streamsClosed({ except: new Set([control]) });
  });

  it('waits for streams opened after the call too, by either side', async () => {
    const { client, server } = await sessionPair();
    const [a, aRemote] = await openPair(client, server);
    const done = track(client.streamsClosed());
    const [b, bRemote] = await openPair(server, client);
    await finishBoth(a, aRemote);
    await turn();
    expect(done.settled()).toBe(false);
    await finishBoth(b, bRemote);
    await done.promise;
  });

  it('counts a stream the peer opened that waits in the backlog', async () => {
    const { session, peer } = await rawPeerOf('server');
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false });
    await peer.barrier(5);
    const done = track(session.streamsClosed());
    await turn();
    expect(done.settled()).toBe(false);
    peer.send({ type: FrameType.RST, streamId: 3, errorCode: ErrorCode.CANCEL });
    await done.promise;
  });

  it('resolves when the session ends with streams still open', async () => {
    const { client, server } = await sessionPair();
    await openPair(client, server);
    const done = client.streamsClosed();
    server.close();
    await done;
    expect(client.isClosed).toBe(true);
    // And at once after the end.
    await client.streamsClosed();
  });

  it('several callers wait independently, each with its own exceptions', async () => {
    const { client, server } = await sessionPair();
    const [a, aRemote] = await openPair(client, server);
    const [b, bRemote] = await openPair(client, server);
    const exceptA = track(client.streamsClosed({ except: [a] }));
    const all = track(client.streamsClosed());
    await finishBoth(b, bRemote);
    await exceptA.promise;
    expect(all.settled()).toBe(false);
    await finishBoth(a, aRemote);
    await all.promise;
  });

  it('an abort signal stops the wait: it rejects with the reason and the stream is untouched', async () => {
    const { client, server } = await sessionPair();
    const [a, aRemote] = await openPair(client, server);
    const controller = new AbortController();
    const waiting = client.streamsClosed({ signal: controller.signal });
    const reason = new Error('drain timed out');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(a.destroyed).toBe(false);
    // Already aborted: rejects at once.
    await expect(client.streamsClosed({ signal: controller.signal })).rejects.toBe(reason);
    // A signal that never fires does not hold the wait open.
    const unused = new AbortController();
    const done = client.streamsClosed({ signal: unused.signal });
    await finishBoth(a, aRemote);
    await done;
  });

  it('rejects a signal that is not an AbortSignal', async () => {
    const { client } = await sessionPair();
    expect(() => client.streamsClosed({ signal: {} as AbortSignal })).toThrow(InvalidArgumentError);
  });
});
