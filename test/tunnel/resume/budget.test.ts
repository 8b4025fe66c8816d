import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.js';
import { defaultResumeConfig, ReplayBudget, resolveResumeConfig } from '../../../src/tunnel/resume/index.js';
import { ReplayQueue } from '../../../src/tunnel/resume/replay-queue.js';

describe('ReplayBudget', () => {
  it('grants up to its limit, then nothing', () => {
    const budget = new ReplayBudget(100);
    expect(budget.take(60)).toBe(60);
    expect(budget.take(60)).toBe(40);
    expect(budget.take(1)).toBe(0);
    expect([budget.used, budget.peak]).toEqual([100, 100]);
    budget.release(30);
    expect([budget.used, budget.peak]).toEqual([70, 100]);
  });

  it('wakes waiters first come, first served, handing each its room directly', () => {
    const budget = new ReplayBudget(100);
    budget.take(100);
    const woken: Array<[string, number]> = [];
    const wake = (owner: { name: string }, granted: number): void => {
      woken.push([owner.name, granted]);
    };
    budget.wait({ name: 'first' }, 30, wake);
    budget.wait({ name: 'second' }, 50, wake);
    budget.wait({ name: 'third' }, 10, wake);
    expect(budget.waiting).toBe(3);
    budget.release(20);
    // Partial room goes to the head of the queue; the others keep waiting.
    expect(woken).toEqual([['first', 20]]);
    // Others may not jump the queue while anyone waits.
    expect(budget.take(5)).toBe(0);
    budget.release(70);
    expect(woken).toEqual([
      ['first', 20],
      ['second', 50],
      ['third', 10],
    ]);
    expect([budget.used, budget.waiting]).toEqual([90, 0]);
    expect(budget.take(50)).toBe(10);
  });

  it('cancel() takes a waiter out of the queue', () => {
    const budget = new ReplayBudget(10);
    budget.take(10);
    const woken: string[] = [];
    const a = { name: 'a' };
    const b = { name: 'b' };
    budget.wait(a, 5, (owner) => woken.push(owner.name));
    budget.wait(b, 5, (owner) => woken.push(owner.name));
    budget.cancel(a);
    budget.cancel({ name: 'not queued' });
    expect(budget.waiting).toBe(1);
    budget.release(10);
    expect(woken).toEqual(['b']);
    budget.cancel(b);
    expect(budget.waiting).toBe(0);
  });

  it('defaults to 64 MiB and rejects a limit that is not a finite count', () => {
    expect(new ReplayBudget().limit).toBe(64 * 1024 * 1024);
    for (const limit of [-1, 1.5, Infinity, Number.NaN]) expect(() => new ReplayBudget(limit)).toThrow(InvalidArgumentError);
  });
});

describe('resolveResumeConfig', () => {
  it('fills in defaults: 4 MiB per conn, 64 MiB per session', () => {
    expect(resolveResumeConfig()).toEqual({ maxReplayBytes: 4 * 1024 * 1024, maxSessionReplayBytes: 64 * 1024 * 1024 });
    expect(resolveResumeConfig({ maxReplayBytes: 128 * 1024, maxSessionReplayBytes: undefined })).toEqual({
      ...defaultResumeConfig,
      maxReplayBytes: 128 * 1024,
    });
  });

  it('names the field that is wrong', () => {
    expect(() => resolveResumeConfig({ maxReplayBytes: 1024 })).toThrow(/options.maxReplayBytes must be an integer from 65536/);
    expect(() => resolveResumeConfig({ maxSessionReplayBytes: Infinity })).toThrow(/options.maxSessionReplayBytes/);
    expect(() => resolveResumeConfig({ maxReplay: 1 } as never)).toThrow(/unknown resume option "maxReplay"/);
    expect(() => resolveResumeConfig(null as never)).toThrow(InvalidArgumentError);
  });
});

describe('ReplayQueue', () => {
  const bytes = (queue: ReplayQueue): string => {
    const out: Buffer[] = [];
    queue.writeTo({ write: (chunk) => out.push(chunk) > 0 });
    return Buffer.concat(out).toString();
  };

  it('drops acknowledged bytes from the front, splitting a chunk without copying it', () => {
    const queue = new ReplayQueue();
    const first = Buffer.from('abcdef');
    queue.push(first);
    queue.push(Buffer.from('ghi'));
    queue.drop(2);
    expect([queue.bytes, bytes(queue)]).toEqual([7, 'cdefghi']);
    const held: Buffer[] = [];
    queue.writeTo({ write: (chunk) => held.push(chunk) > 0 });
    expect(held[0]!.buffer).toBe(first.buffer); // a view, not a copy
    queue.drop(4);
    expect([queue.bytes, bytes(queue)]).toEqual([3, 'ghi']);
    queue.drop(100);
    expect([queue.bytes, bytes(queue)]).toEqual([0, '']);
  });

  it('writeTo() writes every chunk and says whether the target asked to wait', () => {
    const queue = new ReplayQueue();
    for (const part of ['a', 'b', 'c']) queue.push(Buffer.from(part));
    const written: string[] = [];
    expect(queue.writeTo({ write: (chunk) => written.push(chunk.toString()) < 2 })).toBe(false);
    expect(written).toEqual(['a', 'b', 'c']);
    expect(queue.writeTo({ write: () => true })).toBe(true);
  });

  it('stays correct across many pushes and drops (compaction)', () => {
    const queue = new ReplayQueue();
    let expected = '';
    for (let i = 0; i < 1000; i++) {
      const part = String(i % 10).repeat((i % 7) + 1);
      queue.push(Buffer.from(part));
      expected += part;
      if (i % 3 === 0) {
        const drop = (i * 7) % (queue.bytes + 1);
        queue.drop(drop);
        expected = expected.slice(drop);
      }
      if (i % 100 === 0) expect(bytes(queue)).toBe(expected);
    }
    expect([queue.bytes, bytes(queue)]).toEqual([expected.length, expected]);
    queue.clear();
    expect([queue.bytes, bytes(queue)]).toEqual([0, '']);
  });
});
