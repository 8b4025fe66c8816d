/**
 * Backoff: the reconnect delays. Deterministic with an injected random:
 * half of each delay is fixed, half random, the ceiling doubles per attempt
 * up to the cap, and reset starts over.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/tunnel/backoff.js';

const delays = (backoff: Backoff, count: number): number[] => Array.from({ length: count }, () => backoff.next());

describe('Backoff', () => {
  it('with the lowest random draw waits half the ceiling: 250 ms doubling to half the 30 s cap', () => {
    expect(delays(new Backoff({ random: () => 0 }), 9)).toEqual([250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  });

  it('with the highest random draw waits the whole ceiling: 500 ms doubling to the 30 s cap', () => {
    expect(delays(new Backoff({ random: () => 1 }), 8)).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('puts the random draw linearly between half the ceiling and the ceiling', () => {
    expect(delays(new Backoff({ random: () => 0.5 }), 3)).toEqual([375, 750, 1500]);
    expect(delays(new Backoff({ baseMs: 1000, capMs: 1000, random: () => 0.25 }), 2)).toEqual([625, 625]);
  });

  it('uses baseMs and capMs', () => {
    expect(delays(new Backoff({ baseMs: 100, capMs: 350, random: () => 1 }), 4)).toEqual([100, 200, 350, 350]);
  });

  it('rounds to whole milliseconds', () => {
    expect(delays(new Backoff({ baseMs: 3, random: () => 0 }), 2)).toEqual([2, 3]);
    for (const delay of delays(new Backoff({ random: () => 0.123456 }), 10)) expect(Number.isInteger(delay)).toBe(true);
  });

  it('draws one random number per delay', () => {
    let draws = 0;
    const backoff = new Backoff({
      random: () => {
        draws++;
        return 0;
      },
    });
    delays(backoff, 5);
    expect(draws).toBe(5);
  });

  it('counts attempts, and reset starts over from the first delay', () => {
    const backoff = new Backoff({ random: () => 0 });
    expect(backoff.attempt).toBe(0);
    delays(backoff, 4);
    expect(backoff.attempt).toBe(4);
    backoff.reset();
    expect(backoff.attempt).toBe(0);
    expect(backoff.next()).toBe(250);
    expect(backoff.attempt).toBe(1);
  });

  it('stays finite after very many attempts even without a cap', () => {
    const backoff = new Backoff({ capMs: Number.POSITIVE_INFINITY, random: () => 1 });
    const all = delays(backoff, 1000);
    // The exponent stops growing at 2^30.
    expect(all.at(-1)).toBe(500 * 2 ** 30);
    expect(all.every(Number.isFinite)).toBe(true);
  });

  it('property: every delay lies between half the ceiling and the ceiling of its attempt', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 40 }),
        (baseMs, capMs, draws) => {
          const queue = [...draws];
          const backoff = new Backoff({ baseMs, capMs, random: () => queue.shift()! });
          draws.forEach((_, attempt) => {
            const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
            const delay = backoff.next();
            expect(delay).toBeGreaterThanOrEqual(Math.round(ceiling / 2));
            expect(delay).toBeLessThanOrEqual(Math.ceil(ceiling));
          });
        },
      ),
      { numRuns: 200, interruptAfterTimeLimit: 1500 },
    );
  });
});
