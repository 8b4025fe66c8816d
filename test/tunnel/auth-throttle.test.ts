/**
 * AuthThrottle: how long the server waits before answering a hello from an
 * address that recently failed to authenticate. Deterministic with an
 * injected clock (`now`).
 */
import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../src/tunnel/auth-throttle.js';

const MINUTE = 60_000;

/** `count` failures from `address` at time `at`. */
function fail(throttle: AuthThrottle, address: string, count: number, at = 0): void {
  for (let i = 0; i < count; i++) throttle.failed(address, at);
}

describe('AuthThrottle', () => {
  it('answers an address without failures at once', () => {
    expect(new AuthThrottle().delayFor('192.0.2.1', 0)).toBe(0);
  });

  it('waits 0.1 s after one failure and doubles with each one, up to 10 s', () => {
    const throttle = new AuthThrottle();
    const seen: number[] = [];
    for (let failures = 1; failures <= 10; failures++) {
      throttle.failed('192.0.2.1', 1_000);
      seen.push(throttle.delayFor('192.0.2.1', 1_000));
    }
    expect(seen).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
  });

  it('stays at 10 s however many failures there were', () => {
    const throttle = new AuthThrottle();
    fail(throttle, 'a', 1000);
    expect(throttle.delayFor('a', 0)).toBe(10_000);
  });

  it('keeps addresses apart', () => {
    const throttle = new AuthThrottle();
    fail(throttle, '192.0.2.1', 3);
    fail(throttle, '192.0.2.2', 1);
    expect(throttle.delayFor('192.0.2.1', 0)).toBe(400);
    expect(throttle.delayFor('192.0.2.2', 0)).toBe(100);
    expect(throttle.delayFor('192.0.2.3', 0)).toBe(0);
  });

  it('forgets an address when it authenticates', () => {
    const throttle = new AuthThrottle();
    fail(throttle, 'a', 5);
    fail(throttle, 'b', 2);
    throttle.succeeded('a');
    expect(throttle.delayFor('a', 0)).toBe(0);
    expect(throttle.delayFor('b', 0)).toBe(200);
    throttle.failed('a', 0);
    expect(throttle.delayFor('a', 0)).toBe(100);
  });

  it('forgets an address after ten quiet minutes since its last failure, not before', () => {
    const throttle = new AuthThrottle();
    fail(throttle, 'a', 2, 0);
    fail(throttle, 'a', 1, 5 * MINUTE);
    expect(throttle.delayFor('a', 15 * MINUTE)).toBe(400);
    expect(throttle.delayFor('a', 15 * MINUTE + 1)).toBe(0);
    // Forgotten for good: the next failure counts as the first.
    throttle.failed('a', 15 * MINUTE + 2);
    expect(throttle.delayFor('a', 15 * MINUTE + 2)).toBe(100);
  });

  it('a hello after the quiet time that fails again starts over at 0.1 s (delayFor, then failed, as the server calls them)', () => {
    const throttle = new AuthThrottle();
    fail(throttle, 'a', 6, 0);
    const later = 10 * MINUTE + 1;
    expect(throttle.delayFor('a', later)).toBe(0);
    throttle.failed('a', later);
    expect(throttle.delayFor('a', later)).toBe(100);
  });

  it('takes forgetAfterMs', () => {
    const throttle = new AuthThrottle({ forgetAfterMs: 1_000 });
    throttle.failed('a', 0);
    expect(throttle.delayFor('a', 1_000)).toBe(100);
    expect(throttle.delayFor('a', 1_001)).toBe(0);
  });

  it('holds at most maxEntries addresses, dropping the one that failed least recently', () => {
    const throttle = new AuthThrottle({ maxEntries: 2 });
    throttle.failed('a', 0);
    throttle.failed('b', 1);
    throttle.failed('a', 2);
    // a failed again after b, so b is now the oldest.
    throttle.failed('c', 3);
    expect(throttle.delayFor('a', 3)).toBe(200);
    expect(throttle.delayFor('b', 3)).toBe(0);
    expect(throttle.delayFor('c', 3)).toBe(100);
  });

  it('by default remembers 10 000 addresses', () => {
    const throttle = new AuthThrottle();
    for (let i = 0; i < 10_000; i++) throttle.failed(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(throttle.delayFor('10.0.0.0', 0)).toBe(100);
    throttle.failed('192.0.2.1', 0);
    expect(throttle.delayFor('10.0.0.0', 0)).toBe(0);
    expect(throttle.delayFor('10.0.0.1', 0)).toBe(100);
    expect(throttle.delayFor('192.0.2.1', 0)).toBe(100);
  });
});
