import { resolveIntegers, type IntegerRule } from '../util/validate.js';

/** Limits of `serve`, all finite. The CLI gives each a flag (see serve-command.ts). */
export interface ServerLimits {
  /** TLS handshake, then hello, must each finish within this many ms. */
  handshakeTimeoutMs: number;
  /** Connections that have not authenticated yet, at once. */
  maxUnauthenticated: number;
  /** Authenticated client sessions at once. */
  maxSessions: number;
  /** -R listeners one client may hold. */
  maxRemoteListeners: number;
  /** Streams open at once per session and side. */
  maxStreams: number;
  /** Streams a client opened that wait for the server to take them. */
  acceptBacklog: number;
  /** Receive window one session may grant beyond 64 KiB per stream, summed: bounds what a client can make the server buffer. */
  maxSessionBufferBytes: number;
  /** A forward stream's header must arrive within this many ms. */
  headerTimeoutMs: number;
  /** Dialling a -L target must succeed within this many ms. */
  dialTimeoutMs: number;
  /** Close forwarded connections idle for this many ms; 0 turns it off. */
  idleTimeoutMs: number;
}

export const defaultServerLimits: Readonly<ServerLimits> = Object.freeze({
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
});

export const serverLimitRules: Readonly<Record<keyof ServerLimits, IntegerRule>> = Object.freeze({
  handshakeTimeoutMs: { min: 100, max: 600_000, unit: 'ms' },
  maxUnauthenticated: { min: 1, max: 100_000 },
  maxSessions: { min: 1, max: 1_000_000 },
  maxRemoteListeners: { min: 0, max: 10_000 },
  maxStreams: { min: 1, max: 1 << 20 },
  acceptBacklog: { min: 1, max: 1 << 20 },
  maxSessionBufferBytes: { min: 0, max: 2 ** 40, unit: 'bytes' },
  headerTimeoutMs: { min: 100, max: 600_000, unit: 'ms' },
  dialTimeoutMs: { min: 100, max: 600_000, unit: 'ms' },
  idleTimeoutMs: { min: 0, max: 2 ** 31 - 1, unit: 'ms' },
});

/**
 * Validates limits once, naming the field that is wrong
 * (`ERR_MUXTUN_INVALID_ARGUMENT`), and fills in defaults.
 */
export function resolveServerLimits(limits?: Partial<ServerLimits>): ServerLimits {
  return resolveIntegers<ServerLimits>('limits', limits, defaultServerLimits, serverLimitRules);
}
