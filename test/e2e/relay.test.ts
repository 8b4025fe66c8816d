/**
 * The relay of test/support/net.ts, which the resume and fault tests put
 * between connect and serve: it relays faithfully (every byte, half-closes,
 * backpressure), cut() closes both sides of every connection at once and
 * refuses new ones until restore(), and blackhole() makes its connections
 * drop everything without either side learning of it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectionEnd, converse, EchoClient, echoServer, expectEcho, hashExchange, hashServer, relay, sinkServer, type ServedConnection } from '../support/net.js';
import { Scope } from '../support/scope.js';
import { rejection, waitUntil, within } from '../support/wait.js';

const MiB = 1024 * 1024;

/** Whether `closed` settles within `ms` (false: still open after that long; only for checking that nothing happens). */
async function closesWithin(connection: ServedConnection, ms: number): Promise<boolean> {
  return within(connection.closed.then(() => true), ms, 'a close').catch(() => false);
}

describe.concurrent('relay', () => {
  it('relays every byte both ways with half-close, and keeps backpressure', async (context) => {
    const scope = new Scope(context);
    const target = await hashServer(4 * MiB, scope);
    const path = await relay(target.port, scope);
    await hashExchange(path.port, 4 * MiB);

    // A target that never reads: the writer stalls in socket buffers instead of the relay reading everything into memory.
    const sink = await sinkServer(scope);
    const toSink = await relay(sink.port, scope);
    const socket = await EchoClient.connect(toSink.port, scope);
    const chunk = randomBytes(64 * 1024);
    let written = 0;
    const pump = (): void => {
      while (!socket.socket.destroyed && written < 128 * MiB) {
        written += chunk.length;
        if (!socket.socket.write(chunk)) return void socket.socket.once('drain', pump);
      }
    };
    pump();
    let before = -1;
    await waitUntil('the writer to stall', () => {
      const stalled = written === before;
      before = written;
      return stalled;
    }, 20_000, 300);
    // A few socket buffers (about 7 MiB here), far from all that was offered.
    expect(written).toBeLessThan(64 * MiB);
    expect(toSink.relayed()).toBe(1);
  });

  it('cut() resets both sides of every connection and refuses new ones until restore()', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const path = await relay(echo.port, scope);
    const clients = await Promise.all([EchoClient.connect(path.port, scope), EchoClient.connect(path.port, scope)]);
    for (const client of clients) expect((await client.roundTrip('before')).toString()).toBe('before');
    const targetSides = [echo.connections[0]!, echo.connections[1]!];
    expect(path.relayed()).toBe(2);

    const ends = [...clients.map((client) => connectionEnd(client.socket, 2_000)), ...targetSides.map((side) => connectionEnd(side.socket, 2_000))];
    expect(path.cut()).toBe(2);
    expect(path.down).toBe(true);
    expect(await Promise.all(ends)).toEqual(['reset', 'reset', 'reset', 'reset']);
    expect(path.relayed()).toBe(0);

    // While down, a new connection is accepted by the kernel and reset at once; nothing reaches the target.
    const refused = await converse(path.port, 'anyone?', { timeoutMs: 2_000 });
    expect(refused.error?.code).toBe('ECONNRESET');
    expect(refused.received.length).toBe(0);
    expect(echo.connections).toHaveLength(2);

    path.restore();
    expect(path.down).toBe(false);
    await expectEcho(path.port, 256 * 1024);
  });

  it("cut('end') closes both sides in order (FIN, no reset)", async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const path = await relay(echo.port, scope);
    const client = await EchoClient.connect(path.port, scope);
    expect((await client.roundTrip('before')).toString()).toBe('before');
    const targetSide = echo.connections[0]!;

    // The target (echo) closes its side when it reads the FIN; the client (half-open allowed) sees the FIN and no error.
    const targetEnd = connectionEnd(targetSide.socket, 3_000);
    expect(path.cut('end')).toBe(1);
    await within(client.ended, 2_000, 'the FIN of the cut at the client');
    expect(await targetEnd).toBe('end');
    expect(client.error).toBeUndefined();
    expect((await converse(path.port, 'anyone?', { timeoutMs: 2_000 })).error?.code).toBe('ECONNRESET');
    path.restore();
    await expectEcho(path.port);
  });

  it('blackhole() drops every byte and every close both ways, unnoticed; new connections are relayed; cut() closes the silenced ones', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const path = await relay(echo.port, scope);
    const client = await EchoClient.connect(path.port, scope);
    expect((await client.roundTrip('before')).toString()).toBe('before');
    const targetSide = echo.connections[0]!;

    expect(path.blackhole()).toBe(1);
    expect(path.blackhole()).toBe(0);
    expect(path.relayed()).toBe(0);
    let reachedTarget = 0;
    let reachedClient = 0;
    targetSide.socket.on('data', (chunk: Buffer) => (reachedTarget += chunk.length));
    client.socket.on('data', (chunk: Buffer) => (reachedClient += chunk.length));
    client.socket.write('up');
    targetSide.socket.write('down');
    // Nothing is to happen, so only time can show it: both sides stay open and hear nothing for a while.
    expect((await rejection(client.roundTrip('lost', 400))).message).toMatch(/timed out/);
    expect([reachedTarget, reachedClient]).toEqual([0, 0]);
    expect(client.socket.destroyed).toBe(false);
    expect(await closesWithin(targetSide, 100)).toBe(false);

    // The client gives up on it: the target's side does not learn that either.
    client.destroy();
    await client.closed;
    expect(await closesWithin(targetSide, 300)).toBe(false);

    // The path itself works: a new connection is relayed.
    await expectEcho(path.port, 256 * 1024);
    expect(echo.connections).toHaveLength(2);

    // A cut closes what the blackhole kept.
    expect(path.cut()).toBe(1);
    await within(targetSide.closed, 2_000, "the silenced connection's target side to be closed by cut()");
    expect(path.down).toBe(true);
  });
});
