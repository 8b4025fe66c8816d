import { OptionError } from '../util/validate.js';
import { UsageError } from './usage-error.js';

/** How a validated option is spelt on the command line, and whether its value was given in seconds. */
export interface FlagName {
  flag: string;
  seconds?: boolean;
}

/**
 * Runs a layer's validator and reports an invalid value as a usage error
 * (exit 2) under the flag's own name and unit: `--max-sessions: must be an
 * integer from 1 to 1000000, got 0`, `--heartbeat-interval: must be from
 * 0.001 to 2147483.647 seconds, got 0`. `rename` says how a flag is named
 * in the message: a value from a config file is named by its `FILE:LINE: key`.
 */
export function asUsage<T>(flags: Readonly<Record<string, FlagName>>, validate: () => T, rename: (flag: string) => string = (flag) => flag): T {
  try {
    return validate();
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    const name = flags[error.field];
    if (name === undefined) throw new UsageError(error.message);
    const got = error.message.slice(error.message.lastIndexOf(', got ') + 6);
    if (name.seconds && error.rule?.unit === 'ms') {
      const asSeconds = (ms: number): string => String(ms / 1000);
      const gotSeconds = /^\d+$/.test(got) ? asSeconds(Number(got)) : got;
      throw new UsageError(`${rename(name.flag)}: must be from ${asSeconds(error.rule.min)} to ${asSeconds(error.rule.max)} seconds, got ${gotSeconds}`);
    }
    throw new UsageError(`${rename(name.flag)}: must be ${error.expected}, got ${got}`);
  }
}
