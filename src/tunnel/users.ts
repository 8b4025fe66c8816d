import { createHash } from 'node:crypto';
import { checkInteger, OptionError } from '../util/validate.js';
import type { PortRange, ServerPolicy, TargetPattern } from './policy.js';
import { serverLimitRules, type ServerLimits } from './server-limits.js';

/**
 * One user of a shared server: the tokens that authenticate as them (stored
 * as hashes, so a users file is not a secret) and what they may do, where
 * it differs from the server-wide policy and limits.
 */
export interface TunnelUser {
  /** 1-64 of `A-Z a-z 0-9 _ -`, starting with a letter or digit (a TOML bare key). */
  name: string;
  /**
   * `sha256:<64 hex>`: the SHA-256 of each token's UTF-8 (see {@link hashToken}).
   * Several to rotate: add the new one, move clients over, remove the old one.
   * Empty: nobody can authenticate as this user (a user kept but locked out).
   */
  tokens: string[];
  /** Targets -L/-D/-W may reach; replaces the server's `policy.allowLocal` for this user (empty: anything). */
  allowLocal?: TargetPattern[];
  /** Ports -R may bind; replaces the server's `policy.allowRemote` for this user (empty: none). */
  allowRemote?: PortRange[];
  /** Forward streams open at once per session and direction; replaces `limits.maxStreams` for this user. */
  maxStreams?: number;
  /** -R listeners one session of this user may hold; replaces `limits.maxRemoteListeners`. */
  maxRemoteListeners?: number;
  /** Sessions this user may hold at once (their clients together); default: no limit of its own (the server's `maxSessions` still counts everyone). */
  maxSessions?: number;
}

/** The user a plain `token` option stands for. */
export const DEFAULT_USER = 'default';

/** What one session of a user may do: the user's overrides over the server-wide settings. */
export interface UserRights {
  policy: ServerPolicy;
  /** Who set the patterns, for refusals: `the server's --allow-local` or `user alice's allow-local`. */
  allowLocalFrom: string;
  allowRemoteFrom: string;
  maxStreams: number;
  maxRemoteListeners: number;
  /** Undefined: only the server-wide limit applies. */
  maxSessions: number | undefined;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const TOKEN_HASH = /^sha256:[0-9a-f]{64}$/;

/** `sha256:<hex>` of a token, the form users files and {@link TunnelUser.tokens} hold. */
export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** How `users list` shows a token hash: its first 7 hex digits, like a short git commit id. */
export function shortTokenHash(hash: string): string {
  return `${hash.slice(0, 'sha256:'.length + 7)}…`;
}

/** The user's rights: its overrides, else the server's. */
export function userRights(user: TunnelUser, policy: ServerPolicy, limits: ServerLimits): UserRights {
  return {
    policy: { allowLocal: user.allowLocal ?? policy.allowLocal, allowRemote: user.allowRemote ?? policy.allowRemote },
    allowLocalFrom: user.allowLocal ? `user ${user.name}'s allow-local` : "the server's --allow-local",
    allowRemoteFrom: user.allowRemote ? `user ${user.name}'s allow-remote` : "the server's --allow-remote",
    maxStreams: user.maxStreams ?? limits.maxStreams,
    maxRemoteListeners: user.maxRemoteListeners ?? limits.maxRemoteListeners,
    maxSessions: user.maxSessions,
  };
}

function checkPortRanges(field: string, value: unknown): PortRange[] {
  if (!Array.isArray(value)) throw new OptionError(field, 'an array of port ranges', value);
  return value.map((range: unknown, i) => {
    const r = range as Partial<PortRange> | null;
    const from = checkInteger(`${field}[${i}].from`, r?.from, { min: 1, max: 65535 });
    const to = checkInteger(`${field}[${i}].to`, r?.to, { min: from, max: 65535 });
    return { from, to };
  });
}

function checkTargetPatterns(field: string, value: unknown): TargetPattern[] {
  if (!Array.isArray(value)) throw new OptionError(field, 'an array of target patterns', value);
  return value.map((pattern: unknown, i) => {
    const p = pattern as Partial<TargetPattern> | null;
    if (typeof p?.host !== 'string' || p.host === '') throw new OptionError(`${field}[${i}].host`, 'a host name, address or pattern', p?.host);
    return { host: p.host.toLowerCase(), ports: checkPortRanges(`${field}[${i}].ports`, [p.ports])[0]! };
  });
}

/** Validates a policy's shape (the CLI builds it from parsed flags; a library caller may not). */
export function checkPolicy(field: string, policy: ServerPolicy): ServerPolicy {
  if (typeof policy !== 'object' || policy === null) throw new OptionError(field, 'an object with allowLocal and allowRemote', policy);
  return { allowLocal: checkTargetPatterns(`${field}.allowLocal`, policy.allowLocal), allowRemote: checkPortRanges(`${field}.allowRemote`, policy.allowRemote) };
}

const USER_KEYS: ReadonlySet<string> = new Set(['name', 'tokens', 'allowLocal', 'allowRemote', 'maxStreams', 'maxRemoteListeners', 'maxSessions']);

/**
 * Validates users (names, token hash format, no token hash shared, rights
 * and limits) and returns them normalised (hashes in lower case), naming the
 * field that is wrong: `users[1].tokens[0]`.
 */
export function resolveUsers(users: unknown): TunnelUser[] {
  if (!Array.isArray(users)) throw new OptionError('users', 'an array of users', users);
  const names = new Set<string>();
  const owners = new Map<string, string>();
  return users.map((given: unknown, i) => {
    const field = `users[${i}]`;
    if (typeof given !== 'object' || given === null) throw new OptionError(field, 'a user object', given);
    const user = given as Partial<TunnelUser>;
    for (const key of Object.keys(user)) {
      if (!USER_KEYS.has(key) && (user as Record<string, unknown>)[key] !== undefined) {
        throw new OptionError(`${field}.${key}`, `one of ${[...USER_KEYS].join(', ')} (unknown option)`, (user as Record<string, unknown>)[key]);
      }
    }
    if (typeof user.name !== 'string' || !NAME.test(user.name)) {
      throw new OptionError(`${field}.name`, '1-64 letters, digits, _ or -, starting with a letter or digit', user.name);
    }
    if (names.has(user.name)) throw new OptionError(`${field}.name`, 'a name no other user has', user.name);
    names.add(user.name);
    if (!Array.isArray(user.tokens)) throw new OptionError(`${field}.tokens`, 'an array of token hashes (sha256:<64 hex>)', user.tokens);
    const tokens = user.tokens.map((token: unknown, j) => {
      const tokenField = `${field}.tokens[${j}]`;
      const hash = typeof token === 'string' ? token.toLowerCase() : token;
      if (typeof hash !== 'string' || !TOKEN_HASH.test(hash)) throw new OptionError(tokenField, 'sha256: and the 64 hex digits of the SHA-256 of a token', token);
      const owner = owners.get(hash);
      if (owner !== undefined) throw new OptionError(tokenField, owner === user.name ? 'a token hash this user does not list twice' : `a token hash of this user only (user ${owner} has it too)`, token);
      owners.set(hash, user.name!);
      return hash;
    });
    const resolved: TunnelUser = { name: user.name, tokens };
    if (user.allowLocal !== undefined) resolved.allowLocal = checkTargetPatterns(`${field}.allowLocal`, user.allowLocal);
    if (user.allowRemote !== undefined) resolved.allowRemote = checkPortRanges(`${field}.allowRemote`, user.allowRemote);
    if (user.maxStreams !== undefined) resolved.maxStreams = checkInteger(`${field}.maxStreams`, user.maxStreams, serverLimitRules.maxStreams);
    if (user.maxRemoteListeners !== undefined) resolved.maxRemoteListeners = checkInteger(`${field}.maxRemoteListeners`, user.maxRemoteListeners, serverLimitRules.maxRemoteListeners);
    if (user.maxSessions !== undefined) resolved.maxSessions = checkInteger(`${field}.maxSessions`, user.maxSessions, serverLimitRules.maxSessions);
    return resolved;
  });
}

/**
 * The users a server authenticates, by token hash. A presented token is
 * hashed once and looked up: no comparison against each user's token.
 *
 * Timing: the lookup compares hex digests, and how long it takes may in
 * principle say how much of the *digest* of a guess matches a stored
 * digest. That is no help to a guesser: the stored digests are not secret
 * (they are in the users file), and finding a token whose SHA-256 starts a
 * certain way is what a preimage-resistant hash prevents; a high-entropy
 * token cannot be guessed from them. The token itself is never compared.
 */
export class UserTable {
  readonly #byHash = new Map<string, TunnelUser>();
  readonly #byName = new Map<string, TunnelUser>();

  constructor(users: readonly TunnelUser[]) {
    for (const user of users) {
      this.#byName.set(user.name, user);
      for (const hash of user.tokens) this.#byHash.set(hash, user);
    }
  }

  /** The user a presented token authenticates, with the hash it matched; null if none. */
  authenticate(token: string): { user: TunnelUser; tokenHash: string } | null {
    const tokenHash = hashToken(token);
    const user = this.#byHash.get(tokenHash);
    return user ? { user, tokenHash } : null;
  }

  /** The user a token hash belongs to now, if any. */
  ownerOf(tokenHash: string): TunnelUser | undefined {
    return this.#byHash.get(tokenHash);
  }

  byName(name: string): TunnelUser | undefined {
    return this.#byName.get(name);
  }

  get size(): number {
    return this.#byName.size;
  }
}
