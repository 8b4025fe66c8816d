import { InvalidArgumentError } from '../../errors.js';

/**
 * Bounds of session resumption. Both are finite: bytes a peer has not
 * acknowledged are held in memory until it does, so they must be capped per
 * connection and per session.
 */
export interface ResumeOptions {
  /**
   * Most bytes one forwarded connection holds unacknowledged (its replay
   * buffer). At the bound the local socket is paused, so further bytes wait
   * in the kernel and TCP slows the sender. It also caps the bytes in flight
   * per connection, so it must cover what the stream window (up to 1 MiB),
   * the queues ahead of the socket and the ack delay (256 KiB or 20 ms) keep
   * unacknowledged: at 1 MiB a bulk transfer stalled on it and ran at about
   * 0.7x of --no-resume (docs/benchmarks.md). Default 4 MiB.
   */
  maxReplayBytes?: number;
  /**
   * Most bytes all connections of one session hold unacknowledged, summed.
   * A connection that cannot reserve room pauses its socket and waits its
   * turn (first come, first served). Default 64 MiB.
   */
  maxSessionReplayBytes?: number;
}

export type ResumeConfig = Required<ResumeOptions>;

export const defaultResumeConfig: Readonly<ResumeConfig> = Object.freeze({
  maxReplayBytes: 4 * 1024 * 1024,
  maxSessionReplayBytes: 64 * 1024 * 1024,
});

const ranges: Record<keyof ResumeOptions, [min: number, max: number]> = {
  // Below one socket read (64 KiB) a connection would split every read.
  maxReplayBytes: [64 * 1024, 2 ** 32],
  maxSessionReplayBytes: [64 * 1024, 2 ** 40],
};

/** Validates options once, naming the field that is wrong, and fills in defaults. */
export function resolveResumeConfig(options: ResumeOptions = {}): ResumeConfig {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('resume options must be an object');
  const config: ResumeConfig = { ...defaultResumeConfig };
  for (const [key, value] of Object.entries(options) as [keyof ResumeOptions, unknown][]) {
    if (value === undefined) continue;
    const range = ranges[key];
    if (!range) throw new InvalidArgumentError(`unknown resume option "${String(key)}"`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw new InvalidArgumentError(`options.${key} must be an integer from ${range[0]} to ${range[1]}, got ${String(value)}`);
    }
    config[key] = value;
  }
  return config;
}
