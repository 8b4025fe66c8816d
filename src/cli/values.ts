import { UsageError } from './usage-error.js';

/**
 * Text to values, and nothing more: the ranges live in each layer's
 * options validator (resolveServerOptions, resolveClientOptions), whose
 * errors the CLI reports under the flag's name (see option-errors.ts).
 */

/** A whole number, e.g. `--max-sessions 100`. */
export function parseCount(text: string, flag: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a whole number`);
  return Number(text);
}

/** Seconds, decimals allowed (`0.5`), as milliseconds. */
export function parseSeconds(text: string, flag: string): number {
  if (!/^\d{1,9}(\.\d+)?$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a number of seconds`);
  return Math.round(Number(text) * 1000);
}

/** For commander: repeatable options collect into an array. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** For commander: `-v -v` (or `-vv`) counts. */
export const increase = (_value: string | undefined, previous: number): number => previous + 1;
