import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { StreamResetError } from '../../../src/muxado/index.js';
import { TunnelError } from '../../../src/tunnel/errors.js';
import { record, Tunnel, when, within, writeAll } from './helpers.js';
import { seededRandom } from '../../support/random.js';
import { waitUntil } from '../../support/wait.js';

function sha256(chunks: Buffer[]): string {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}


describe('ResumableConn while the link holds', () => {
  it('moves bytes both ways, half-closes each direction once and completes on both sides', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    const up = randomBytes(300_000);
    const down = randomBytes(200_000);
    await writeAll(pair.app, up);
    await within(target.ended, 5_000, "the target's EOF");
    // The other direction goes on after the half-close.
    await writeAll(pair.target, down);
    const [aEnd, bEnd] = await within(Promise.all([pair.aEnd, pair.bEnd]), 5_000, 'both conns to complete');
    await within(Promise.all([app.closed, target.closed]), 5_000, 'both application sockets to close');
    expect(Buffer.concat(target.chunks).equals(up)).toBe(true);
    expect(Buffer.concat(app.chunks).equals(down)).toBe(true);
    expect([app.ends, target.ends]).toEqual([1, 1]);
    expect([app.errors, target.errors]).toEqual([[], []]);
    expect(aEnd).toEqual({ bytesUp: up.length, bytesDown: down.length, how: 'complete' });
    expect(bEnd).toEqual({ bytesUp: down.length, bytesDown: up.length, how: 'complete' });
    expect([pair.a.replayBytes, pair.b.replayBytes]).toEqual([0, 0]);
    expect([tunnel.ctxA.budget.used, tunnel.ctxB.budget.used]).toEqual([0, 0]);
    expect(tunnel.link!.acks.flatMap((channel) => channel.errors)).toEqual([]);
  });

  it('an application that stops reading holds the sender back: its bytes wait in the window and the kernel, not in memory', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    pair.app.pause();
    const down = randomBytes(24 * 1024 * 1024);
    const writing = writeAll(pair.target, down);
    // The application's kernel buffers fill, then A's window, then B stops reading the target:
    // wait until A has taken nothing new for 5 polls in a row.
    let last = -1;
    let still = 0;
    await waitUntil('the transfer to stall', () => {
      const now = pair.a.receivedBytes;
      still = now === last && now > 0 ? still + 1 : 0;
      last = now;
      return still >= 5;
    }, 15_000, 20);
    // What A holds toward the application: about one event-loop turn's batch (TurnWrites), not the transfer.
    expect(pair.aLocal.writableLength).toBeLessThan(1024 * 1024);
    expect(pair.a.receivedBytes).toBeLessThan(down.length / 2);
    const app = record(pair.app);
    pair.app.resume();
    await within(Promise.all([writing, app.ended]), 15_000, 'the whole transfer once the application reads');
    expect(app.sha256()).toBe(createHash('sha256').update(down).digest('hex'));
  });

  it('an RST from the application resets the target, as bridge() does', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const target = record(pair.target);
    pair.target.write('hello');
    await once(pair.app, 'data');
    pair.app.resetAndDestroy();
    const [aEnd, bEnd] = await within(Promise.all([pair.aEnd, pair.bEnd]), 5_000, 'both conns to end');
    await within(target.closed, 5_000, 'the target socket to close');
    expect(aEnd.how).toBe('local-reset');
    expect((aEnd.error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    expect(bEnd.how).toBe('remote-reset');
    expect(bEnd.error).toBeInstanceOf(StreamResetError);
    expect((bEnd.error as StreamResetError).remote).toBe(true);
    expect(target.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(target.ends).toBe(0);
    expect([tunnel.ctxA.budget.used, tunnel.ctxB.budget.used]).toEqual([0, 0]);
  });

  it('an RST from the target resets the application', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    pair.app.write('hello');
    await once(pair.target, 'data');
    pair.target.resetAndDestroy();
    const [aEnd, bEnd] = await within(Promise.all([pair.aEnd, pair.bEnd]), 5_000, 'both conns to end');
    await within(app.closed, 5_000, 'the app socket to close');
    expect(bEnd.how).toBe('local-reset');
    expect(aEnd.how).toBe('remote-reset');
    expect(app.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
  });

  it('abort() resets the local socket (ECONNRESET for the application) and the stream, so the peer resets too', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    pair.app.write('hello');
    await once(pair.target, 'data');
    const reason = new Error('the grace period expired');
    pair.a.abort(reason);
    const [aEnd, bEnd] = await within(Promise.all([pair.aEnd, pair.bEnd]), 5_000, 'both conns to end');
    await within(Promise.all([app.closed, target.closed]), 5_000, 'both sockets to close');
    expect(aEnd).toEqual({ bytesUp: 5, bytesDown: 0, how: 'aborted', error: reason });
    expect(bEnd.how).toBe('remote-reset');
    expect(app.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(target.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect([app.ends, target.ends]).toEqual([0, 0]);
    pair.a.abort(); // a second call does nothing
  });

  it('refuses acks and resume states that contradict what was sent (ERR_MUXTUN_PROTOCOL)', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    pair.app.write('12345');
    await when(pair.target, 'data', () => pair.b.receivedBytes === 5, 5_000, 'five bytes at B');
    expect(pair.a.sentBytes).toBe(5);
    const protocol = expect.objectContaining({ code: 'ERR_MUXTUN_PROTOCOL' });
    expect(() => pair.a.ack(6, false)).toThrow(TunnelError);
    expect(() => pair.a.ack(6, false)).toThrow(protocol);
    expect(() => pair.a.ack(5, true)).toThrow(/FIN that was not sent/);
    expect(() => pair.a.ack(-1, false)).toThrow(protocol);
    expect(() => pair.a.ack(1.5, false)).toThrow(protocol);
    pair.a.ack(3, false);
    pair.a.ack(2, false); // stale: ignored
    expect(pair.a.ackedBytes).toBeGreaterThanOrEqual(3);
    const stream = tunnel.link!.client.open();
    stream.on('error', () => {});
    expect(() => pair.a.attach(stream, { bytes: 2, fin: false })).toThrow(/acknowledged/);
    expect(() => pair.a.attach(stream, { bytes: 9, fin: false })).toThrow(protocol);
    // Nothing changed: the conn still carries bytes on its stream.
    expect(pair.a.attached).toBe(true);
    stream.destroy();
    pair.app.write('6');
    await when(pair.target, 'data', () => pair.b.receivedBytes === 6, 5_000, 'the sixth byte at B');
  });
});

describe('ResumableConn across dropped links', () => {
  it('carries 16 MiB each way across 5 drops at random points, every byte once and in order', async () => {
    const seed = Number(process.env.RESUME_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    const size = 16 * 1024 * 1024;
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    const up = randomBytes(size);
    const down = randomBytes(size);

    // Five drops at random points of the 32 MiB flowing through both directions.
    const points = Array.from({ length: 5 }, () => Math.floor(random() * 2 * size)).sort((x, y) => x - y);
    let flowed = 0;
    let resuming = false;
    const failures: unknown[] = [];
    tunnel.onReceived = (_conn, bytes) => {
      flowed += bytes;
      if (resuming || points.length === 0 || flowed < points[0]!) return;
      points.shift();
      resuming = true;
      tunnel
        .resume()
        .catch((error: unknown) => failures.push(error))
        .finally(() => {
          resuming = false;
        });
    };

    await within(Promise.all([writeAll(pair.app, up), writeAll(pair.target, down)]), 60_000, `both writers (seed ${seed})`);
    const [aEnd, bEnd] = await within(Promise.all([pair.aEnd, pair.bEnd]), 60_000, `both conns to complete (seed ${seed})`);
    await within(Promise.all([app.closed, target.closed]), 5_000, 'both application sockets to close');

    expect(failures, `seed ${seed}`).toEqual([]);
    expect(tunnel.drops, `seed ${seed}`).toBe(5);
    expect([app.errors, target.errors]).toEqual([[], []]);
    expect([app.ends, target.ends]).toEqual([1, 1]);
    expect([target.bytes, app.bytes]).toEqual([size, size]);
    expect(sha256(target.chunks), `seed ${seed}`).toBe(sha256([up]));
    expect(sha256(app.chunks), `seed ${seed}`).toBe(sha256([down]));
    expect(aEnd).toEqual({ bytesUp: size, bytesDown: size, how: 'complete' });
    expect(bEnd).toEqual({ bytesUp: size, bytesDown: size, how: 'complete' });
    expect([tunnel.ctxA.budget.used, tunnel.ctxB.budget.used]).toEqual([0, 0]);
  });

  it('a FIN in flight at the drop arrives exactly once after the resume; both ends complete', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    const up = randomBytes(100_000);
    await writeAll(pair.app, up, false);
    await when(pair.target, 'data', () => target.bytes === up.length, 5_000, 'the data at the target');

    // The link dies in the very turn A reads the app's FIN: A has handed it
    // to its stream (its listener ran first), but no frame left the process.
    let dropped: Promise<void> | undefined;
    pair.aLocal.once('end', () => {
      dropped = tunnel.drop();
    });
    pair.app.end();
    await within(once(pair.aLocal, 'end'), 5_000, "A's read of the FIN");
    await dropped;
    expect([pair.a.sentFin, pair.a.finAcked, pair.b.finReceived, target.ends]).toEqual([true, false, false, 0]);

    const { a, b } = await tunnel.resume();
    expect(a).toEqual([{ action: 'attach', id: pair.id, peer: { bytes: up.length, fin: false } }]);
    expect(b).toEqual([{ action: 'attach', id: pair.id, peer: { bytes: 0, fin: false } }]);
    await within(target.ended, 5_000, "the target's EOF");
    await when(tunnel.link!.acks[0], 'ack', () => pair.a.finAcked, 5_000, 'the ack of the FIN');

    // The other direction goes on, and its FIN completes both conns.
    const down = randomBytes(50_000);
    await writeAll(pair.target, down);
    await within(Promise.all([pair.aEnd, pair.bEnd, app.closed, target.closed]), 5_000, 'both conns to complete');
    expect([app.ends, target.ends]).toEqual([1, 1]);
    expect(Buffer.concat(target.chunks).equals(up)).toBe(true);
    expect(Buffer.concat(app.chunks).equals(down)).toBe(true);
    expect([app.errors, target.errors]).toEqual([[], []]);
  });

  it('a FIN that arrived but whose ack was lost is not delivered twice', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    // The link dies in the turn B takes the FIN: its ack is queued, never sent.
    let dropped: Promise<void> | undefined;
    tunnel.onReceived = (conn, bytes) => {
      if (conn === pair.b && bytes === 0) dropped = tunnel.drop();
    };
    await writeAll(pair.app, Buffer.from('all of it'));
    await within(target.ended, 5_000, "the target's EOF");
    await dropped;
    tunnel.onReceived = null;
    expect([pair.a.sentFin, pair.a.finAcked, pair.b.finReceived]).toEqual([true, false, true]);

    const { a } = await tunnel.resume();
    expect(a).toEqual([{ action: 'attach', id: pair.id, peer: { bytes: 9, fin: true } }]);
    expect([pair.a.finAcked, pair.a.replayBytes]).toEqual([true, 0]);
    await writeAll(pair.target, Buffer.from('reply'));
    await within(Promise.all([pair.aEnd, pair.bEnd, app.closed, target.closed]), 5_000, 'both conns to complete');
    expect([app.ends, target.ends]).toEqual([1, 1]);
    expect(Buffer.concat(target.chunks).toString()).toBe('all of it');
    expect(Buffer.concat(app.chunks).toString()).toBe('reply');
  });

  it('both FINs through and only acks lost: the resume completes the conn without a stream', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    await writeAll(pair.app, Buffer.from('ping'));
    await within(target.ended, 5_000, "the target's EOF");
    await when(tunnel.link!.acks[0], 'ack', () => pair.a.finAcked, 5_000, "the ack of A's FIN");
    let dropped: Promise<void> | undefined;
    tunnel.onReceived = (conn, bytes) => {
      if (conn === pair.a && bytes === 0) dropped = tunnel.drop();
    };
    await writeAll(pair.target, Buffer.from('pong'));
    await within(app.ended, 5_000, "the app's EOF");
    await dropped;
    // A is done: its FIN was acknowledged, the peer's arrived, its socket closed.
    expect((await within(pair.aEnd, 5_000, "A's conn to complete")).how).toBe('complete');
    expect([pair.b.sentFin, pair.b.finAcked, pair.a.finReceived]).toEqual([true, false, true]);

    const { a, b } = await tunnel.resume();
    expect(b).toEqual([{ action: 'complete', id: pair.id, peer: { bytes: 4, fin: true } }]);
    // A forgot it (complete): nothing to do, B's own verdict covers it.
    expect(a).toEqual([{ action: 'unknown', id: pair.id }]);
    await within(Promise.all([pair.aEnd, pair.bEnd, app.closed, target.closed]), 5_000, 'both conns to complete');
    expect((await pair.bEnd).how).toBe('complete');
  });

  it('an RST the dead link did not deliver: the peer forgot the conn, so the resume aborts it', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    pair.app.write('hello');
    await when(pair.target, 'data', () => pair.b.receivedBytes === 5, 5_000, 'the bytes at B');
    await tunnel.drop();
    expect(pair.b.attached).toBe(false);
    // While the link is down, the target goes away with RST: B forgets the conn.
    pair.target.resetAndDestroy();
    expect((await within(pair.bEnd, 5_000, "B's conn to end")).how).toBe('local-reset');

    const { a, b } = await tunnel.resume();
    expect(a).toEqual([{ action: 'abort', id: pair.id, reason: expect.any(String) }]);
    expect(b).toEqual([{ action: 'unknown', id: pair.id }]);
    expect((await within(pair.aEnd, 5_000, "A's conn to end")).how).toBe('aborted');
    await within(app.closed, 5_000, 'the app socket to close');
    expect(app.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
  });

  it('a stream that died before attach() leaves the conn detached if its session ended, and resets it if it was reset', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const pair = await tunnel.open();
    const app = record(pair.app);
    const target = record(pair.target);
    await tunnel.drop();
    const link = await tunnel.connect();
    // The new session dies too before the conn is attached to its stream.
    const doomed = link.client.open();
    doomed.on('error', () => {});
    link.client.close();
    expect(doomed.destroyed).toBe(true);
    tunnel.detached.length = 0;
    pair.a.attach(doomed, { bytes: 0, fin: false });
    expect([pair.a.attached, pair.a.done, tunnel.detached]).toEqual([false, false, [pair.a]]);

    // Resumed properly, it carries on; then a stream reset by the peer ends it.
    await tunnel.resume();
    pair.app.write('still here');
    await when(pair.target, 'data', () => pair.b.receivedBytes === 10, 5_000, 'the bytes at B');
    const reset = tunnel.link!.client.open();
    reset.on('error', () => {});
    reset.write('x');
    (await within(tunnel.link!.server.accept(), 5_000, 'the stream to reset')).reset();
    await within(new Promise((resolve) => reset.once('close', resolve)), 5_000, 'the RST');
    expect(reset.errored).toBeInstanceOf(StreamResetError);
    pair.a.attach(reset, { bytes: pair.b.receivedBytes, fin: false });
    expect((await within(pair.aEnd, 5_000, "A's conn to end")).how).toBe('remote-reset');
    await within(app.closed, 5_000, 'the app socket to close');
    expect(app.errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNRESET']);
    expect(target.errors).toEqual([]);
    const late = tunnel.link!.client.open();
    late.on('error', () => {});
    expect(() => pair.a.attach(late, { bytes: 0, fin: false })).toThrow(/has ended/);
  });

  it('a conn opened while the link is down is reopened at resume, replayed from byte 0', async () => {
    const tunnel = new Tunnel();
    await tunnel.connect();
    const first = await tunnel.open();
    await tunnel.drop();
    const pair = await tunnel.openDetached();
    const app = record(pair.app);
    const up = randomBytes(200_000);
    await writeAll(pair.app, up);
    await when(pair.aLocal, 'end', () => pair.a.sentFin, 5_000, 'A to read the whole request');
    expect(pair.a.replayBytes).toBe(up.length);

    const { a, b } = await tunnel.resume();
    expect(a).toEqual([
      { action: 'attach', id: first.id, peer: { bytes: 0, fin: false } },
      { action: 'reopen', id: pair.id },
    ]);
    expect(b).toEqual([
      { action: 'attach', id: first.id, peer: { bytes: 0, fin: false } },
      { action: 'await-reopen', id: pair.id },
    ]);
    const target = record(pair.target!);
    await within(target.ended, 5_000, "the target's EOF");
    await writeAll(pair.target!, Buffer.from('done'));
    await within(Promise.all([pair.aEnd, pair.bEnd, app.closed, target.closed]), 5_000, 'the reopened conn to complete');
    expect(Buffer.concat(target.chunks).equals(up)).toBe(true);
    expect(Buffer.concat(app.chunks).toString()).toBe('done');
    first.a.abort();
  });
});
