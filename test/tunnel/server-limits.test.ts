/**
 * resolveServerLimits: defaults, the allowed range of every limit (both
 * ends, and one past each), unknown names and values that are not integers.
 */
import { describe, expect, it } from 'vitest';
import { thrown } from '../support/wait.js';
import { defaultServerLimits, resolveServerLimits, serverLimitRules, type ServerLimits } from '../../src/tunnel/server-limits.js';

// Bad configuration is an invalid argument; ERR_MUXTUN_LIMIT means a limit was reached.
const LIMIT = 'ERR_MUXTUN_INVALID_ARGUMENT';

/** The range of each limit, as serve --help and the README document them. */
const ranges = Object.fromEntries(Object.entries(serverLimitRules).map(([key, rule]) => [key, [rule.min, rule.max]])) as Record<keyof ServerLimits, [min: number, max: number]>;
const keys = Object.keys(ranges) as Array<keyof ServerLimits>;


describe('resolveServerLimits', () => {
  it('fills in every default when given nothing', () => {
    const expected: ServerLimits = {
      handshakeTimeoutMs: 5_000,
      maxUnauthenticated: 64,
      maxSessions: 1_000,
      maxRemoteListeners: 32,
      maxStreams: 10_000,
      acceptBacklog: 256,
      maxSessionBufferBytes: 32 * 1024 * 1024,
      headerTimeoutMs: 5_000,
      dialTimeoutMs: 10_000,
      idleTimeoutMs: 0,
    };
    expect(defaultServerLimits).toEqual(expected);
    expect(resolveServerLimits()).toEqual(expected);
    expect(resolveServerLimits({})).toEqual(expected);
  });

  it('every default is within its range', () => {
    for (const key of keys) {
      const [min, max] = ranges[key];
      expect(defaultServerLimits[key], key).toBeGreaterThanOrEqual(min);
      expect(defaultServerLimits[key], key).toBeLessThanOrEqual(max);
    }
  });

  it('returns a fresh object: changing it changes no defaults', () => {
    const limits = resolveServerLimits();
    limits.maxSessions = 1;
    expect(resolveServerLimits().maxSessions).toBe(1_000);
  });

  it('overrides only what it is given; undefined means the default', () => {
    expect(resolveServerLimits({ maxSessions: 5, idleTimeoutMs: undefined })).toEqual({ ...defaultServerLimits, maxSessions: 5 });
  });

  it.each(keys)('%s accepts both ends of its range', (key) => {
    const [min, max] = ranges[key];
    expect(resolveServerLimits({ [key]: min })[key]).toBe(min);
    expect(resolveServerLimits({ [key]: max })[key]).toBe(max);
  });

  it.each(keys)('%s refuses one below and one above its range, naming the field and the range', (key) => {
    const [min, max] = ranges[key];
    for (const value of [min - 1, max + 1]) {
      const error = thrown(() => resolveServerLimits({ [key]: value }));
      expect(error.code).toBe(LIMIT);
      expect(error.message).toMatch(new RegExp(`^limits\\.${key} must be an integer from ${min} to ${max}( ms| bytes)?, got ${value}$`));
    }
  });

  it.each([
    [1.5, '1.5'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    ['64', '"64"'],
    [null, 'null'],
    [true, 'true'],
    [[64], '64'],
  ])('refuses %j, which is not an integer', (value, shown) => {
    const error = thrown(() => resolveServerLimits({ maxUnauthenticated: value } as unknown as Partial<ServerLimits>));
    expect(error.code).toBe(LIMIT);
    expect(error.message).toBe(`limits.maxUnauthenticated must be an integer from 1 to 100000, got ${shown}`);
  });

  it('refuses an unknown limit, naming it', () => {
    const error = thrown(() => resolveServerLimits({ maxConnections: 10 } as unknown as Partial<ServerLimits>));
    expect(error.code).toBe(LIMIT);
    expect(error.message).toMatch(/^limits\.maxConnections must be one of .* \(unknown option\), got 10$/);
  });

  it('refuses an unknown limit even when it is mixed with good ones', () => {
    const error = thrown(() => resolveServerLimits({ maxSessions: 10, handshakeTimeout: 5 } as unknown as Partial<ServerLimits>));
    expect(error.code).toBe(LIMIT);
    expect(error.message).toMatch(/^limits\.handshakeTimeout must be one of .* \(unknown option\), got 5$/);
  });

  // Regression: the range table is a plain object, so names inherited from
  // Object.prototype once looked known and were copied into the result.
  it('refuses names inherited from Object.prototype as unknown', () => {
    for (const name of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      const error = thrown(() => resolveServerLimits(JSON.parse(`{"${name}": 5}`) as Partial<ServerLimits>));
      expect(error.message).toMatch(new RegExp(`^limits\\.${name} must be one of .* \\(unknown option\\)`));
    }
  });
});
