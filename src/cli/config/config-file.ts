import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { readFileBounded } from '../../util/bounded-read.js';
import { errnoCode, errorMessage } from '../../util/errors.js';
import { shellQuote } from '../../util/shell-quote.js';
import { xdgBaseDir, type Env } from '../../util/xdg.js';
import { UsageError } from '../usage-error.js';
import { tomlLayout } from '../../util/toml-layout.js';

/** Largest config file read; a config of a few hundred forwards is a few KiB. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** A parsed config file: its top-level values, and where each key is written. */
export interface ConfigFile {
  /** Absolute path of the file. */
  readonly path: string;
  /** The document as smol-toml parsed it (tables are plain objects). */
  readonly values: Readonly<Record<string, unknown>>;
  /** The 1-based line a key (a dotted path: `max-sessions`, `users.alice`) is written on. */
  lineOf(key: string): number | undefined;
  /** `FILE:LINE: key`, how messages name a key of this file. */
  describe(key: string): string;
}

/**
 * The config file a command reads when none is given: `connect.toml` in
 * `$XDG_CONFIG_HOME/muxtun` or `~/.config/muxtun` (beside known_hosts).
 * HOME comes from `env` first, so a caller (or a test) that passes its own
 * environment decides where that is.
 */
export function defaultConfigFile(name: string, env: Env, home: string = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir()): string {
  return join(xdgBaseDir(env, 'XDG_CONFIG_HOME', home, '.config'), 'muxtun', name);
}

/**
 * Reads and parses a TOML config file. Everything wrong with it is a
 * {@link UsageError} naming the file (and the line, where there is one):
 * missing, unreadable, too large, not TOML, or holding one of `secretKeys`
 * while group or others may read it (the message gives the `chmod 600` fix,
 * as the state directory's checks do).
 *
 * @param path - the file; relative to the working directory
 * @param secretKeys - top-level keys whose values are secrets (`token`)
 */
export async function readConfigFile(path: string, secretKeys: readonly string[] = []): Promise<ConfigFile> {
  const file = resolve(path);
  let text: string;
  try {
    const read = await readFileBounded(file, MAX_CONFIG_FILE_BYTES);
    if (read.tooLarge) throw new UsageError(`config file ${file} is larger than the ${MAX_CONFIG_FILE_BYTES / 1024 / 1024} MiB limit`);
    text = read.text;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = errnoCode(error);
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : errorMessage(error);
    throw new UsageError(`config file ${file}: cannot read it (${why})`);
  }
  let values: Record<string, unknown>;
  try {
    values = parse(text) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    // smol-toml's message is "Invalid TOML document: REASON\n\nCODE BLOCK".
    const reason = error.message.split('\n', 1)[0]!.replace(/^Invalid TOML document: /, '');
    throw new UsageError(`${file}:${error.line}:${error.column}: not valid TOML: ${reason}\n\n${error.codeblock.trimEnd()}`);
  }
  const lines = tomlLayout(text).keyLines;
  const config: ConfigFile = {
    path: file,
    values,
    lineOf: (key) => lines.get(key),
    describe: (key) => {
      const line = lines.get(key);
      return `${file}${line === undefined ? '' : `:${line}`}: ${key}`;
    },
  };
  const secrets = secretKeys.filter((key) => Object.hasOwn(values, key));
  if (secrets.length > 0) await refuseIfShared(config, secrets);
  return config;
}

/** A file holding a secret must be private to its owner, like the state dir's token (ssh's StrictModes). */
async function refuseIfShared(config: ConfigFile, secrets: readonly string[]): Promise<void> {
  if (process.platform === 'win32') return;
  const mode = (await stat(config.path)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const where = secrets.map((key) => `${key}${config.lineOf(key) !== undefined ? ` on line ${config.lineOf(key)}` : ''}`).join(', ');
  throw new UsageError(
    `config file ${config.path} holds a secret (${where}) and is readable or writable by group or others (mode 0${mode.toString(8).padStart(3, '0')}). ` +
      'muxtun refuses to use a secret others could read or change. Fix it with:\n' +
      `  chmod 600 ${shellQuote(config.path)}\n` +
      'or keep the token in a file of its own (token-file = "...") and the config readable. ' +
      'Consider replacing the token if others may have read it.',
  );
}

/** The directory relative paths in `config` are resolved against. */
export function configDir(config: ConfigFile): string {
  return dirname(config.path);
}
