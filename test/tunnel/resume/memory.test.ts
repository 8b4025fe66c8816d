import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { totalReplayBytes } from '../../../src/tunnel/resume/index.js';
import { record, Tunnel, until, within, writeAll } from './helpers.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('ResumableConn memory', () => {
  it('a target that stops reading plus a drop: replay stays within its bounds and the rest waits in the kernel', async () => {
    const maxReplayBytes = 256 * 1024;
    const maxSessionReplayBytes = 384 * 1024;
    const tunnel = new Tunnel({ maxReplayBytes, maxSessionReplayBytes });
    await tunnel.connect();
    const pairs = [await tunnel.open(), await tunnel.open()];
    const budget = tunnel.ctxA.budget;

    // Checked after every chunk A's conns take, not only at the end.
    let worstConn = 0;
    let worstTotal = 0;
    for (const pair of pairs) {
      pair.aLocal.on('data', () => {
        worstConn = Math.max(worstConn, pair.a.replayBytes);
        worstTotal = Math.max(worstTotal, pairs[0]!.a.replayBytes + pairs[1]!.a.replayBytes);
      });
    }

    // The targets stop reading; the applications write far more than the
    // kernel buffers and the tunnel together may hold.
    const targets = pairs.map((pair) => {
      pair.target.pause();
      return record(pair.target, false);
    });
    const size = 32 * 1024 * 1024;
    const data = pairs.map(() => randomBytes(size));
    let written = 0;
    const writers = Promise.all(pairs.map((pair, i) => writeAll(pair.app, data[i]!).then(() => written++)));
    writers.catch(() => {}); // awaited below; a failed assertion before must not also report it unhandled

    // The stall reaches A: its sockets are paused by their streams.
    await until(() => pairs.every((pair) => pair.a.socketPaused), 10_000, "A's sockets to be paused by the stall");
    await tunnel.drop();
    // Detached, A reads on into replay until the bounds stop it.
    await until(() => budget.used === maxSessionReplayBytes && pairs.every((pair) => pair.a.socketPaused), 10_000, 'the replay bounds to be reached');

    for (const pair of pairs) {
      expect(pair.a.attached).toBe(false);
      expect(pair.a.replayBytes).toBeLessThanOrEqual(maxReplayBytes);
      // Paused, holding at most its own small read buffer: the rest is in the kernel.
      expect(pair.aLocal.isPaused()).toBe(true);
      expect(pair.aLocal.readableLength).toBeLessThanOrEqual(128 * 1024);
      // TCP's backpressure reached the application: its writes wait.
      expect(pair.app.writableLength).toBeGreaterThan(0);
    }
    expect(worstConn).toBeLessThanOrEqual(maxReplayBytes);
    expect(worstTotal).toBeLessThanOrEqual(maxSessionReplayBytes);
    expect(budget.peak).toBeLessThanOrEqual(maxSessionReplayBytes);
    // Neither conn is full (2 x 256 KiB > 384 KiB): the budget holds them back.
    expect(budget.waiting).toBeGreaterThanOrEqual(1);
    expect(written).toBe(0);
    expect(totalReplayBytes()).toBeLessThanOrEqual(2 * maxSessionReplayBytes);

    // Back up, the targets read again: everything arrives, once, in order,
    // and the waiting conn got its turn.
    await tunnel.resume();
    for (const pair of pairs) {
      pair.target.resume();
      pair.target.once('end', () => pair.target.end());
    }
    await within(writers, 30_000, 'the applications to write everything');
    const ends = await within(Promise.all(pairs.flatMap((pair) => [pair.aEnd, pair.bEnd])), 30_000, 'every conn to complete');
    expect(ends.map((end) => end.how)).toEqual(['complete', 'complete', 'complete', 'complete']);
    expect(targets.map((target) => target.bytes)).toEqual([size, size]);
    expect(targets.map((target) => target.sha256())).toEqual(data.map(sha256));
    expect(targets.map((target) => target.errors)).toEqual([[], []]);
    expect(worstConn).toBeLessThanOrEqual(maxReplayBytes);
    expect(budget.peak).toBeLessThanOrEqual(maxSessionReplayBytes);
    expect([budget.used, budget.waiting]).toEqual([0, 0]);
  });
});
