import { UsageError } from './usage-error.js';

/** Parses a whole number for a flag, naming the flag and the range when it is wrong. */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag}: "${text}" is not a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

/** Parses seconds (decimals allowed) into milliseconds. */
export function parseSeconds(text: string, flag: string, min = 0, max = 86_400): number {
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds < min || seconds > max) {
    throw new UsageError(`${flag}: "${text}" is not a number of seconds from ${min} to ${max}`);
  }
  return Math.round(seconds * 1000);
}

/** Engine heartbeat options from --heartbeat-interval and --heartbeat-tolerance. */
export function heartbeatOptions(flags: { heartbeatInterval: string; heartbeatTolerance: string }): { heartbeatInterval: number; heartbeatTolerance: number } {
  return {
    heartbeatInterval: parseSeconds(flags.heartbeatInterval, '--heartbeat-interval', 0.05, 3600),
    heartbeatTolerance: parseSeconds(flags.heartbeatTolerance, '--heartbeat-tolerance', 0.05, 3600),
  };
}
