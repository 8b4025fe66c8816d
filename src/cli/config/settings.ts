import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';
import { readConfigFile, type ConfigFile } from './config-file.js';
import { configKeys, optionValuesFrom, type ConfigKey, type FileValue } from './config-keys.js';

/**
 * Flags and a config file merged into one set of option values, remembering
 * where each came from. Flags override the file and the file overrides
 * defaults (environment variables rank below the file: each command reads
 * them only where an option is still unset).
 *
 * The command line is kept as parsed ({@link CommandLine}) and merged with
 * the file into a new object rather than written into commander's values,
 * so the same command line can be merged again with a changed file (a
 * reload) without the old file's values lingering.
 */

/** What commander parsed from argv, kept apart from any file: the values, their sources, and the option table. */
export interface CommandLine {
  /** `command.opts()`: defaults included. */
  readonly values: Readonly<Record<string, unknown>>;
  /** commander's source of each value: 'cli', 'default', ... */
  readonly sources: Readonly<Record<string, string | undefined>>;
  /** The positional arguments, as processed. */
  readonly args: readonly unknown[];
  /** The command's config keys. */
  readonly keys: ReadonlyMap<string, ConfigKey>;
}

/** Options about the config file itself; they are not keys in it. */
export const FILE_OPTIONS = ['config', 'check'] as const;

/** Takes what commander parsed, in an action: `commandLine(command)`. */
export function commandLine(command: Command): CommandLine {
  const values = { ...command.opts() };
  const sources = Object.fromEntries(Object.keys(values).map((attribute) => [attribute, command.getOptionValueSource(attribute)]));
  return { values, sources, args: [...command.processedArgs], keys: configKeys(command, FILE_OPTIONS) };
}

/** Where a setting's value came from, for messages and `--check`. */
export type Origin =
  | { kind: 'flag' }
  | { kind: 'file'; file: string; line: number | undefined }
  | { kind: 'env'; variable: string }
  | { kind: 'default' }
  /** Found elsewhere: the state dir's token, ... (`where` says where). */
  | { kind: 'other'; where: string };

/** Describes an origin in a few words: `flag`, `file /etc/muxtun/serve.toml:3`, `env MUXTUN_TOKEN`, `default`. */
export function describeOrigin(origin: Origin): string {
  switch (origin.kind) {
    case 'flag':
      return 'flag';
    case 'file':
      return `file ${origin.file}${origin.line === undefined ? '' : `:${origin.line}`}`;
    case 'env':
      return `env ${origin.variable}`;
    case 'default':
      return 'default';
    case 'other':
      return origin.where;
  }
}

/**
 * Options whose alternatives exclude each other (`--token` or
 * `--token-file`): when a flag gives one side, the file's values for the
 * other sides are dropped, so that a flag overrides the file's choice
 * instead of colliding with it (`connect -W` beside a connect.toml of
 * forwards). Attributes, side by side: `[['token'], ['tokenFile']]`.
 */
export type Alternatives = ReadonlyArray<ReadonlyArray<string>>;

export interface MergeOptions {
  /** The file to read, or none. */
  file: string | undefined;
  /** Top-level keys that hold secrets: a file with one must be private (mode 0600). */
  secretKeys?: readonly string[];
  /** Keys that are not options (connect's `server`): strings, read with {@link Settings.extra}. */
  extraKeys?: readonly string[];
  alternatives?: readonly Alternatives[];
}

/** The merged values of one command, and where each came from. */
export class Settings {
  /** The merged option values, shaped as commander gives them. */
  readonly values: Readonly<Record<string, unknown>>;
  /** The config file read, if any. */
  readonly file: ConfigFile | undefined;
  readonly keys: ReadonlyMap<string, ConfigKey>;
  readonly #fromFile: ReadonlyMap<string, FileValue>;
  readonly #given: CommandLine;

  constructor(given: CommandLine, file: ConfigFile | undefined, fromFile: ReadonlyMap<string, FileValue>, values: Record<string, unknown>) {
    this.#given = given;
    this.file = file;
    this.keys = given.keys;
    this.#fromFile = fromFile;
    this.values = values;
  }

  /** A non-option key of the file (`server`), if written there. */
  extra(key: string): string | undefined {
    const value = this.#fromFile.get(key)?.value;
    return typeof value === 'string' ? value : undefined;
  }

  /** Where the value of an option (by attribute, or an extra key) came from. */
  origin(attribute: string): Origin {
    const fromFile = this.#fromFile.get(attribute);
    if (fromFile !== undefined && this.file !== undefined) return { kind: 'file', file: this.file.path, line: fromFile.line };
    return this.#given.sources[attribute] === 'cli' ? { kind: 'flag' } : { kind: 'default' };
  }

  /**
   * How a message names an option: its flag (`--max-sessions`) as the
   * code spells it, or `FILE:LINE: max-sessions` when the file set it.
   */
  name(flag: string): string {
    const spec = this.#byFlag(flag);
    if (spec === undefined || this.file === undefined) return flag;
    return this.origin(spec.attribute).kind === 'file' ? this.file.describe(spec.key) : flag;
  }

  /** As {@link name}, for a key of the file that is not an option (`server`), or `fallback` when the file did not set it. */
  nameExtra(key: string, fallback: string): string {
    return this.file !== undefined && this.#fromFile.has(key) ? this.file.describe(key) : fallback;
  }

  /**
   * Runs `check` (a parser or check of the option spelt `flag`) and, when
   * the value came from the file, restates its usage error as the file's:
   * `-L 80: expected ...` becomes `FILE:LINE: local "80": expected ...`.
   * `text` is the value the message quotes after the flag, if it does.
   */
  at<T>(flag: string, check: () => T, text?: string): T {
    let result: T;
    try {
      result = check();
    } catch (error) {
      throw this.#restated(flag, error, text);
    }
    if (result instanceof Promise) return result.catch((error: unknown) => Promise.reject(this.#restated(flag, error, text))) as T;
    return result;
  }

  #restated(flag: string, error: unknown, text: string | undefined): unknown {
    if (!(error instanceof UsageError)) return error;
    const spec = this.#byFlag(flag);
    let label = this.name(flag);
    if (spec === undefined || label === flag) return error;
    // `tls-listen = false needs --ws-listen`: a flag's presence is a boolean's value in the file.
    if (spec.kind === 'boolean') label = `${label} = ${String(this.values[spec.attribute])}`;
    for (const spelling of spec.spellings) {
      const written = text === undefined ? spelling : `${spelling} ${text}`;
      if (!error.message.startsWith(written)) continue;
      const rest = error.message.slice(written.length);
      if (rest !== '' && !/^[\s:,]/.test(rest)) continue;
      return new UsageError(`${label}${text === undefined ? '' : ` "${text}"`}${rest}`);
    }
    return new UsageError(`${label}: ${error.message}`);
  }

  #byFlag(flag: string): ConfigKey | undefined {
    for (const spec of this.keys.values()) if (spec.spellings.includes(flag)) return spec;
    return undefined;
  }
}

/**
 * Reads `options.file` (if any) and merges it under the command line: for
 * each key of the file, the value is used unless a flag set that option
 * (commander's source 'cli') or a flag chose one of its alternatives.
 */
export async function mergeConfig(given: CommandLine, options: MergeOptions): Promise<Settings> {
  if (options.file === undefined) return new Settings(given, undefined, new Map(), { ...given.values });
  const file = await readConfigFile(options.file, options.secretKeys);
  const fromFile = optionValuesFrom(file, given.keys, options.extraKeys);
  const overridden = new Set<string>();
  for (const alternatives of options.alternatives ?? []) {
    const chosen = alternatives.findIndex((side) => side.some((attribute) => given.sources[attribute] === 'cli'));
    if (chosen < 0) continue;
    alternatives.forEach((side, index) => {
      if (index !== chosen) for (const attribute of side) overridden.add(attribute);
    });
  }
  const values: Record<string, unknown> = { ...given.values };
  const used = new Map<string, FileValue>();
  for (const [attribute, value] of fromFile) {
    if (given.keys.has(value.key) && (given.sources[attribute] === 'cli' || overridden.has(attribute))) continue;
    used.set(attribute, value);
    if (given.keys.has(value.key)) values[attribute] = value.value;
  }
  return new Settings(given, file, used, values);
}
