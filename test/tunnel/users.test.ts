/**
 * users.ts and the server's options with users: token hashes, validation
 * naming the field, lookup by token, rights over the server's defaults,
 * and which option changes a reconfigure applies or leaves for a restart.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compareServerOptions } from '../../src/tunnel/server-reconfigure.js';
import { defaultPolicy, defaultServerLimits, hashToken, resolveServerOptions, resolveUsers, shortTokenHash, type TunnelServerOptions } from '../../src/tunnel/index.js';
import { userRights, UserTable } from '../../src/tunnel/users.js';
import { thrown } from '../support/wait.js';

const hash = (token: string): string => `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
const base: TunnelServerOptions = { host: '127.0.0.1', port: 0, tls: { cert: 'c', key: 'k' } };
const field = (run: () => unknown): unknown => {
  const error = thrown(run) as Error & { code?: unknown; field?: string };
  expect(error.code).toBe('ERR_MUXTUN_INVALID_ARGUMENT');
  return error.field;
};

describe('hashToken', () => {
  it('is sha256: and the hex SHA-256 of the UTF-8, and shortTokenHash keeps 7 hex digits', () => {
    expect(hashToken('test')).toBe('sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08');
    expect(hashToken('é')).toBe(hash('é'));
    expect(shortTokenHash(hashToken('test'))).toBe('sha256:9f86d08…');
  });
});

describe('resolveUsers', () => {
  it('normalises hashes to lower case and keeps the overrides given', () => {
    const [user] = resolveUsers([{ name: 'alice', tokens: [hash('a').toUpperCase().replace('SHA256', 'sha256')], allowRemote: [{ from: 9000, to: 9010 }], maxStreams: 5 }]);
    expect(user).toEqual({ name: 'alice', tokens: [hash('a')], allowRemote: [{ from: 9000, to: 9010 }], maxStreams: 5 });
  });

  it.each([
    ['a bad name', [{ name: 'a b', tokens: [] }], 'users[0].name'],
    ['a name starting with -', [{ name: '-x', tokens: [] }], 'users[0].name'],
    ['a duplicate name', [{ name: 'a', tokens: [] }, { name: 'a', tokens: [] }], 'users[1].name'],
    ['tokens not an array', [{ name: 'a', tokens: 'x' }], 'users[0].tokens'],
    ['a hash that is no sha256', [{ name: 'a', tokens: ['md5:00'] }], 'users[0].tokens[0]'],
    ['a short hash', [{ name: 'a', tokens: ['sha256:abcd'] }], 'users[0].tokens[0]'],
    ['a hash twice in one user', [{ name: 'a', tokens: [hash('x'), hash('x')] }], 'users[0].tokens[1]'],
    ['a hash shared by two users', [{ name: 'a', tokens: [hash('x')] }, { name: 'b', tokens: [hash('x')] }], 'users[1].tokens[0]'],
    ['maxStreams 0', [{ name: 'a', tokens: [], maxStreams: 0 }], 'users[0].maxStreams'],
    ['maxSessions 1.5', [{ name: 'a', tokens: [], maxSessions: 1.5 }], 'users[0].maxSessions'],
    ['a port range that ends before it starts', [{ name: 'a', tokens: [], allowRemote: [{ from: 10, to: 9 }] }], 'users[0].allowRemote[0].to'],
    ['an empty host', [{ name: 'a', tokens: [], allowLocal: [{ host: '', ports: { from: 1, to: 2 } }] }], 'users[0].allowLocal[0].host'],
    ['an unknown key', [{ name: 'a', tokens: [], admin: true }], 'users[0].admin'],
  ])('refuses %s, naming the field', (_what, users, name) => {
    expect(field(() => resolveUsers(users))).toBe(name);
  });
});

describe('resolveServerOptions with users and token', () => {
  it('makes the token the user "default"', () => {
    const options = resolveServerOptions({ ...base, token: 'a-token-of-16-chars' });
    expect(options.users).toEqual([{ name: 'default', tokens: [hash('a-token-of-16-chars')] }]);
  });

  it('takes users alone, and an empty list (nobody yet)', () => {
    expect(resolveServerOptions({ ...base, users: [{ name: 'alice', tokens: [hash('t')] }] }).users.map((u) => u.name)).toEqual(['alice']);
    expect(resolveServerOptions({ ...base, users: [] }).users).toEqual([]);
  });

  it('refuses neither, a user named default beside a token, and a token a user has too', () => {
    expect(field(() => resolveServerOptions(base))).toBe('token');
    expect(field(() => resolveServerOptions({ ...base, token: 'a-token-of-16-chars', users: [{ name: 'default', tokens: [] }] }))).toBe('users[0].name');
    expect(field(() => resolveServerOptions({ ...base, token: 'a-token-of-16-chars', users: [{ name: 'a', tokens: [hash('a-token-of-16-chars')] }] }))).toBe('token');
    expect(field(() => resolveServerOptions({ ...base, token: 'short' }))).toBe('token');
  });
});

describe('UserTable', () => {
  it('finds the user of a presented token by its hash, and nobody for another token', () => {
    const table = new UserTable(resolveUsers([{ name: 'alice', tokens: [hash('one'), hash('two')] }, { name: 'bob', tokens: [hash('three')] }]));
    expect(table.authenticate('two')).toEqual({ user: expect.objectContaining({ name: 'alice' }), tokenHash: hash('two') });
    expect(table.authenticate('three')?.user.name).toBe('bob');
    expect(table.authenticate('four')).toBeNull();
    expect(table.ownerOf(hash('one'))?.name).toBe('alice');
  });
});

describe('userRights', () => {
  it("takes the user's overrides and the server's settings for the rest, saying whose patterns refuse", () => {
    const limits = { ...defaultServerLimits };
    const plain = userRights({ name: 'bob', tokens: [] }, defaultPolicy, limits);
    expect(plain).toMatchObject({ policy: defaultPolicy, maxStreams: limits.maxStreams, maxRemoteListeners: limits.maxRemoteListeners, maxSessions: undefined, allowRemoteFrom: "the server's --allow-remote" });
    const alice = userRights({ name: 'alice', tokens: [], allowRemote: [{ from: 9000, to: 9000 }], maxStreams: 3, maxSessions: 1 }, defaultPolicy, limits);
    expect(alice).toMatchObject({ policy: { allowLocal: [], allowRemote: [{ from: 9000, to: 9000 }] }, maxStreams: 3, maxSessions: 1, allowRemoteFrom: "user alice's allow-remote", allowLocalFrom: "the server's --allow-local" });
  });
});

describe('compareServerOptions', () => {
  it('lists live changes as applied and listening or TLS changes as needing a restart', () => {
    const current = resolveServerOptions({ ...base, token: 'a-token-of-16-chars' });
    expect(compareServerOptions(current, current)).toEqual({ applied: [], restartNeeded: [] });
    const next = resolveServerOptions({
      ...base,
      port: 4443,
      tls: { cert: 'c2', key: 'k' },
      token: 'another-token-of-16',
      users: [{ name: 'alice', tokens: [] }],
      policy: { allowLocal: [], allowRemote: [{ from: 9000, to: 9001 }] },
      limits: { maxStreams: 5, handshakeTimeoutMs: 1_000 },
    });
    expect(compareServerOptions(current, next)).toEqual({
      applied: ['token', 'users', 'policy.allowRemote', 'limits.maxStreams'],
      restartNeeded: ['port', 'tls', 'limits.handshakeTimeoutMs'],
    });
  });
});
