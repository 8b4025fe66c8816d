import { Option, type Command } from 'commander';
import { defaultSessionConfig, type SessionOptions } from '../muxado/index.js';
import type { FlagName } from './option-errors.js';
import { LOG_LEVELS } from './logger.js';
import { collect, increase, parseSeconds } from './values.js';

export { collect };

/** The flags both `serve` and `connect` take, as commander gives them. */
export interface CommonFlags {
  token?: string;
  tokenFile?: string;
  drainTimeout?: string;
  heartbeatInterval?: string;
  heartbeatTolerance?: string;
  logLevel?: string;
  logFormat?: string;
  verbose: number;
  quiet?: boolean;
}

/** Default for --drain-timeout, in seconds. */
export const DEFAULT_DRAIN_SECONDS = 5;

/** Engine options named by their flags, for option-errors.ts. */
export const sessionFlagNames: Readonly<Record<string, FlagName>> = {
  'session.heartbeatInterval': { flag: '--heartbeat-interval', seconds: true },
  'session.heartbeatTolerance': { flag: '--heartbeat-tolerance', seconds: true },
};

/**
 * Adds the options both commands share, worded for `side` (whose token,
 * who is checked by the heartbeat). Declared once so the two cannot drift.
 */
export function addCommonOptions(command: Command, side: 'serve' | 'connect'): Command {
  const peer = side === 'serve' ? 'each client' : 'the server';
  return command
    .option('--token <token>', `${side === 'serve' ? 'shared secret clients must present, 16 characters or more' : "the server's token"} (visible to other users in \`ps\`: prefer MUXTUN_TOKEN or --token-file)`)
    .option('--token-file <file>', 'read the token from a file')
    .option('--drain-timeout <seconds>', `on SIGINT/SIGTERM, let open connections finish for this long, then end them (default ${DEFAULT_DRAIN_SECONDS}; a second signal ends at once)`)
    .option('--heartbeat-interval <seconds>', `how often to check that ${peer} is alive (default ${defaultSessionConfig.heartbeatInterval / 1000})`)
    .option('--heartbeat-tolerance <seconds>', `silence beyond the interval after which ${peer} is considered gone (default ${defaultSessionConfig.heartbeatTolerance / 1000})`)
    .option('-v, --verbose', 'more log output: -v debug (one line per forwarded connection), -vv trace', increase, 0)
    .option('-q, --quiet', 'log errors only')
    .addOption(new Option('--log-level <level>', `exactly this log level (overrides -v and -q; default info)`).choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'pretty or json (default: pretty on a terminal, json otherwise)').choices(['pretty', 'json']));
}

/** The log level from --log-level, -q and -v (in that order of precedence). */
export function logLevelFrom(flags: CommonFlags, fallback = 'info'): string {
  if (flags.logLevel !== undefined) return flags.logLevel;
  if (flags.quiet) return 'error';
  if (flags.verbose >= 2) return 'trace';
  if (flags.verbose === 1) return 'debug';
  return fallback;
}

/** Engine options from the heartbeat flags (validated by the tunnel layer). */
export function sessionFrom(flags: CommonFlags): SessionOptions {
  return {
    ...(flags.heartbeatInterval !== undefined ? { heartbeatInterval: parseSeconds(flags.heartbeatInterval, '--heartbeat-interval') } : {}),
    ...(flags.heartbeatTolerance !== undefined ? { heartbeatTolerance: parseSeconds(flags.heartbeatTolerance, '--heartbeat-tolerance') } : {}),
  };
}

/** --drain-timeout in ms. */
export function drainFrom(flags: CommonFlags): number {
  return flags.drainTimeout === undefined ? DEFAULT_DRAIN_SECONDS * 1000 : parseSeconds(flags.drainTimeout, '--drain-timeout');
}
