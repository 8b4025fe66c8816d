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

/** The flags about the config file, as commander gives them. */
export interface ConfigFlags {
  /** The file; `false` after connect's --no-config. */
  config?: string | false;
  check?: boolean;
}

/**
 * Adds --config and --check (see {@link configHelp} for the help). `defaultFile` (connect's
 * connect.toml) is read when present unless --no-config is given.
 */
export function addConfigOptions(command: Command, side: 'serve' | 'connect', defaultFile?: string): Command {
  command.option('--config <file>', `read settings from this TOML file; flags override it${defaultFile !== undefined ? ` (default: ${defaultFile}, if it exists)` : ''}`);
  if (defaultFile !== undefined) command.option('--no-config', `do not read ${defaultFile}`);
  return command.option('--check', 'check the flags and the config file as a start would (without listening or connecting), print the resolved settings with secrets masked and exit: 0 valid, 2 not');
}

/** The help's section on config files, for after the examples. */
export function configHelp(side: 'serve' | 'connect'): string {
  const examples =
    side === 'serve'
      ? 'max-sessions = 100, allow-local = ["db:5432", "*.internal:443"]\n  (repeatable options are arrays), tls-listen = false (--no-X is X = false)'
      : 'server = "host:4443", local = ["8080:localhost:80"]\n  (-L; likewise remote, dynamic; stdio for -W; repeatable options are arrays),\n  reconnect = false (--no-X is X = false)';
  const paths = side === 'serve' ? 'cert, key, state-dir, token-file, users' : 'ca, known-hosts, token-file';
  const reload =
    side === 'serve'
      ? 'Reload: SIGHUP, or a change to the config or users file, applies them\n  without dropping what they still allow; a bad file is logged and ignored.'
      : 'Reload: SIGHUP re-reads the config file: added forwards start, removed\n  ones stop, the rest and the session are untouched.';
  return `
Config file (TOML): every long option is a key of the same name:
  ${examples}.
  Numbers may be written bare or quoted. Relative paths
  (${paths}) are relative to the file's directory.
  A file holding a token must be private (chmod 600), or give token-file.
  Precedence: flag > config file > environment variable > default.
${reload}`;
}

/** The log level from --log-level, -q and -v (in that order of precedence). */
export function logLevelFrom(flags: CommonFlags, fallback = 'info'): string {
  if (flags.logLevel !== undefined) return flags.logLevel;
  if (flags.quiet) return 'error';
  if (flags.verbose >= 2) return 'trace';
  if (flags.verbose === 1) return 'debug';
  return fallback;
}

/** How messages name a flag: itself, or where a config file set it (Settings.name). */
export type NameFlag = (flag: string) => string;
const asIs: NameFlag = (flag) => flag;

/** Engine options from the heartbeat flags (validated by the tunnel layer). */
export function sessionFrom(flags: CommonFlags, name: NameFlag = asIs): SessionOptions {
  return {
    ...(flags.heartbeatInterval !== undefined ? { heartbeatInterval: parseSeconds(flags.heartbeatInterval, name('--heartbeat-interval')) } : {}),
    ...(flags.heartbeatTolerance !== undefined ? { heartbeatTolerance: parseSeconds(flags.heartbeatTolerance, name('--heartbeat-tolerance')) } : {}),
  };
}

/** --drain-timeout in ms. */
export function drainFrom(flags: CommonFlags, name: NameFlag = asIs): number {
  return flags.drainTimeout === undefined ? DEFAULT_DRAIN_SECONDS * 1000 : parseSeconds(flags.drainTimeout, name('--drain-timeout'));
}

/** What `--check` shows for the shared options left unset: the defaults a start uses. */
export function commonDefaults(drainMs: number, logLevel: string): Record<string, { value: unknown; origin: { kind: 'default' } }> {
  const byDefault = (value: unknown): { value: unknown; origin: { kind: 'default' } } => ({ value, origin: { kind: 'default' } });
  return {
    'drain-timeout': byDefault(drainMs / 1000),
    'heartbeat-interval': byDefault(defaultSessionConfig.heartbeatInterval / 1000),
    'heartbeat-tolerance': byDefault(defaultSessionConfig.heartbeatTolerance / 1000),
    'log-level': byDefault(logLevel),
  };
}
