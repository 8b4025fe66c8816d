import { TunnelError, TunnelErrorCode } from './errors.js';

/** Limits of `serve`, all finite. Each has a `serve` flag (see `limitFlags`). */
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

const ranges: Record<keyof ServerLimits, [min: number, max: number]> = {
  handshakeTimeoutMs: [100, 600_000],
  maxUnauthenticated: [1, 100_000],
  maxSessions: [1, 1_000_000],
  maxRemoteListeners: [0, 10_000],
  maxStreams: [1, 1 << 20],
  acceptBacklog: [1, 1 << 20],
  maxSessionBufferBytes: [0, 2 ** 40],
  headerTimeoutMs: [100, 600_000],
  dialTimeoutMs: [100, 600_000],
  idleTimeoutMs: [0, 2 ** 31 - 1],
};

/** Validates limits once, naming the field that is wrong, and fills in defaults. */
export function resolveServerLimits(limits: Partial<ServerLimits> = {}): ServerLimits {
  const resolved: ServerLimits = { ...defaultServerLimits };
  for (const [key, value] of Object.entries(limits) as [keyof ServerLimits, unknown][]) {
    if (value === undefined) continue;
    const range = ranges[key];
    if (!range) throw new TunnelError(TunnelErrorCode.LIMIT, `unknown server limit "${String(key)}"`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw new TunnelError(TunnelErrorCode.LIMIT, `limit ${key} must be an integer from ${range[0]} to ${range[1]}, got ${String(value)}`);
    }
    resolved[key] = value;
  }
  return resolved;
}
