import { INITIAL_WINDOW, MAX_WINDOW } from './constants.js';
import { InvalidArgumentError } from './errors.js';

/** Options of a session. Every limit has a finite default. */
export interface SessionOptions {
  /** Most streams open at once per side: the peer's SYNs beyond it get RST(REFUSED_STREAM), `open()` beyond it throws. Default 10,000. */
  maxStreams?: number;
  /** Streams the peer opened that the application has not accepted yet; beyond it new streams get RST(REFUSED_STREAM). Default 256. */
  acceptBacklog?: number;
  /**
   * Receive window one stream grows to, by doubling from the protocol's 65,536, while its reader keeps up.
   * Default 256 KiB: every byte in flight on the session is a byte an interactive stream's frame waits behind
   * (1 MiB made a ping wait ~4x longer under bulk load on loopback; docs/benchmarks.md, issue 16).
   * From 65,536 to `maxStreamWindow`; defaults to `maxStreamWindow` when that is set below 256 KiB.
   */
  streamWindowFloor?: number;
  /**
   * Hard cap on one stream's receive window. Above `streamWindowFloor` a window doubles only when, twice in a
   * row, the bytes a window update allowed were read within two of the session's smallest heartbeat round
   * trips: the window holds the sender back on a long path, not a queue (docs/muxado.md, flow control). With
   * `heartbeat: false` there is no round trip to go by and windows stay at the floor. Default 16 MiB.
   */
  maxStreamWindow?: number;
  /** Receive window granted beyond the initial 64 KiB, summed over all streams of the session: bounds what a fast peer can make us buffer. Default 32 MiB. */
  maxSessionWindowGrowth?: number;
  /** Bytes of control frames (RST, WNDINC, GOAWAY, SYN) queued while the transport is backed up; beyond it the session ends. Default 1 MiB. */
  maxControlQueueBytes?: number;
  /**
   * Send heartbeats and end the session when the peer stops answering. Peer heartbeats are always echoed. Default true.
   * The heartbeat also measures the round trip that lets stream windows grow past `streamWindowFloor`: without it they stay there.
   */
  heartbeat?: boolean;
  /** Milliseconds between heartbeats. Default 3,000 (the reference peer's). */
  heartbeatInterval?: number;
  /** Milliseconds past the interval the peer may stay silent before the session ends. Default 10,000 (the reference peer's). */
  heartbeatTolerance?: number;
  /** Milliseconds `close()` waits for queued frames to reach the transport before destroying it. Default 5,000. */
  closeTimeout?: number;
}

export type SessionConfig = Required<SessionOptions>;

export const defaultSessionConfig: Readonly<SessionConfig> = Object.freeze({
  maxStreams: 10_000,
  acceptBacklog: 256,
  streamWindowFloor: 256 * 1024,
  maxStreamWindow: 16 * 1024 * 1024,
  maxSessionWindowGrowth: 32 * 1024 * 1024,
  maxControlQueueBytes: 1024 * 1024,
  heartbeat: true,
  heartbeatInterval: 3_000,
  heartbeatTolerance: 10_000,
  closeTimeout: 5_000,
});

/** The range of every numeric option, in its unit (ms for times, bytes for sizes). */
export const sessionOptionRanges: Readonly<Record<Exclude<keyof SessionOptions, 'heartbeat'>, readonly [min: number, max: number]>> = {
  maxStreams: [1, 1 << 30],
  acceptBacklog: [1, 1 << 20],
  streamWindowFloor: [INITIAL_WINDOW, MAX_WINDOW],
  maxStreamWindow: [INITIAL_WINDOW, MAX_WINDOW],
  maxSessionWindowGrowth: [0, Number.MAX_SAFE_INTEGER],
  maxControlQueueBytes: [1024, Number.MAX_SAFE_INTEGER],
  heartbeatInterval: [1, 2 ** 31 - 1],
  heartbeatTolerance: [1, 2 ** 31 - 1],
  closeTimeout: [0, 2 ** 31 - 1],
};

/** Validates options once, naming the field that is wrong, and fills in defaults. */
export function resolveSessionConfig(options: SessionOptions = {}): SessionConfig {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('session options must be an object');
  const config: SessionConfig = { ...defaultSessionConfig };
  for (const [key, value] of Object.entries(options) as [keyof SessionOptions, unknown][]) {
    if (value === undefined) continue;
    if (key === 'heartbeat') {
      if (typeof value !== 'boolean') throw new InvalidArgumentError(`options.heartbeat must be a boolean, got ${typeof value}`);
      config.heartbeat = value;
      continue;
    }
    const range = Object.hasOwn(sessionOptionRanges, key) ? sessionOptionRanges[key as Exclude<keyof SessionOptions, 'heartbeat'>] : undefined;
    if (!range) throw new InvalidArgumentError(`unknown session option "${String(key)}"`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw new InvalidArgumentError(`options.${key} must be an integer from ${range[0]} to ${range[1]}, got ${String(value)}`);
    }
    config[key] = value;
  }
  if (options.streamWindowFloor === undefined) {
    // A cap set below the default floor (valid before the floor existed) lowers the floor with it.
    config.streamWindowFloor = Math.min(config.streamWindowFloor, config.maxStreamWindow);
  } else if (config.streamWindowFloor > config.maxStreamWindow) {
    throw new InvalidArgumentError(
      `options.streamWindowFloor must not exceed options.maxStreamWindow (${config.maxStreamWindow}), got ${config.streamWindowFloor}`,
    );
  }
  return config;
}
