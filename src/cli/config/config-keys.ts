import { isAbsolute, resolve } from 'node:path';
import { InvalidArgumentError, type Command, type Option } from 'commander';
import { collect } from '../values.js';
import { UsageError } from '../usage-error.js';
import { configDir, type ConfigFile } from './config-file.js';

/**
 * The keys of a config file, read off the command's own options so that a
 * flag added to a command is a key at once: `--max-sessions <n>` is
 * `max-sessions`, `--no-reconnect` is `reconnect` (false turns it off). What
 * a key accepts follows from how the option is declared:
 *
 * - an option with a value takes a string; a number too when its value is
 *   one (`<n>`, `<seconds>`, `<port>`, `<ports>`, `<[host:]port>`...);
 * - a repeatable option (`collect`, or variadic) takes an array of those;
 * - a flag without a value takes true or false; `-v` (counted) an integer;
 * - `<file>` and `<dir>` values relative to the config file's directory.
 */

/** How a key's value is written in the file. */
export type KeyKind = 'string' | 'strings' | 'boolean' | 'count';

export interface ConfigKey {
  /** The key in the file: the long flag without dashes (and without `no-`). */
  key: string;
  /** The option's attribute in commander's values (`maxSessions`). */
  attribute: string;
  /** How the option is spelt on the command line, long first: `--local`, `-L`. */
  spellings: string[];
  kind: KeyKind;
  /** A TOML number is accepted for the value (it is one). */
  numeric: boolean;
  /** The value is a path: relative ones are resolved against the config file's directory. */
  path: boolean;
  choices: readonly string[] | undefined;
  /** The option's own value parser (other than `collect`), run on file values as on the command line. */
  parse: ((value: string, previous: unknown) => unknown) | undefined;
  /** A `--no-x` goes with this valued `--x` (`--control FILE`, `--no-control`): `x = false` is accepted as well. */
  negatable?: boolean;
}

const NUMERIC_VALUE = /\b(n|count|seconds|ms|bytes|ports?|number)\b/;
const PATH_VALUE = /^(file|dir)$/;

/**
 * The config keys of `command`: every option with a long name except
 * `exclude`d attributes (`config`, `check`: options about the file itself).
 */
export function configKeys(command: Command, exclude: readonly string[] = []): Map<string, ConfigKey> {
  const keys = new Map<string, ConfigKey>();
  for (const option of command.options) {
    if (option.long === undefined || exclude.includes(option.attributeName())) continue;
    const name = option.long.replace(/^--/, '');
    const key = option.negate ? name.replace(/^no-/, '') : name;
    const existing = keys.get(key);
    if (existing !== undefined) {
      // --x and --no-x: one key, both spellings.
      existing.spellings.push(...spellingsOf(option));
      if (option.negate && existing.kind === 'string') existing.negatable = true;
      continue;
    }
    keys.set(key, describeOption(key, option));
  }
  return keys;
}

function describeOption(key: string, option: Option): ConfigKey {
  const takesValue = option.required || option.optional;
  const placeholder = /[<[](.*?)(\.\.\.)?[>\]]$/.exec(option.flags)?.[1] ?? '';
  const repeatable = option.variadic || option.parseArg === collect;
  const kind: KeyKind = !takesValue ? (option.parseArg !== undefined ? 'count' : 'boolean') : repeatable ? 'strings' : 'string';
  return {
    key,
    attribute: option.attributeName(),
    spellings: spellingsOf(option),
    kind,
    numeric: takesValue && NUMERIC_VALUE.test(placeholder),
    path: takesValue && PATH_VALUE.test(placeholder),
    choices: option.argChoices,
    parse: takesValue && option.parseArg !== undefined && option.parseArg !== collect ? (option.parseArg as (value: string, previous: unknown) => unknown) : undefined,
  };
}

function spellingsOf(option: Option): string[] {
  return [option.long, option.short].filter((spelling): spelling is string => spelling !== undefined);
}

/** A value read from the file, in the shape commander would have given for the flag, and where it was written. */
export interface FileValue {
  key: string;
  value: unknown;
  line: number | undefined;
}

/**
 * The file's values as option values, by attribute. Every key must be one
 * of `keys` or `extra` (keys that are not options, such as connect's
 * `server`, which must be strings); any other key, a value of the wrong
 * type or a value the option refuses is a {@link UsageError} naming
 * `FILE:LINE` and the key.
 */
export function optionValuesFrom(file: ConfigFile, keys: ReadonlyMap<string, ConfigKey>, extra: readonly string[] = []): Map<string, FileValue> {
  const values = new Map<string, FileValue>();
  for (const [key, raw] of Object.entries(file.values)) {
    const line = file.lineOf(key);
    const spec = keys.get(key);
    if (spec === undefined) {
      if (!extra.includes(key)) throw new UsageError(`${file.describe(key)}: unknown key${suggestion(key, [...keys.keys(), ...extra], keys)}`);
      if (typeof raw !== 'string') throw new UsageError(`${file.describe(key)}: expected a string, got ${typeName(raw)}`);
      values.set(key, { key, value: raw, line });
      continue;
    }
    values.set(spec.attribute, { key, value: convert(spec, raw, file), line });
  }
  return values;
}

function convert(spec: ConfigKey, raw: unknown, file: ConfigFile): unknown {
  const fail = (expected: string): never => {
    throw new UsageError(`${file.describe(spec.key)}: expected ${expected}, got ${typeName(raw)}`);
  };
  switch (spec.kind) {
    case 'boolean':
      return typeof raw === 'boolean' ? raw : fail('true or false');
    case 'count':
      if (raw === true || raw === false) return raw ? 1 : 0;
      return typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 10 ? raw : fail('a whole number from 0 to 10 (or true, false)');
    case 'string': {
      if (raw === false && spec.negatable === true) return false;
      const text = scalar(spec, raw) ?? fail(`${spec.numeric ? 'a number or a string' : 'a string'}${spec.negatable === true ? ' (or false)' : ''}`);
      return parsed(spec, file, text, undefined);
    }
    case 'strings': {
      const one = spec.numeric ? 'numbers or strings' : 'strings';
      if (!Array.isArray(raw)) return fail(`an array of ${one} (${spec.key} = [...])`);
      return raw.reduce<unknown>((previous, item) => parsed(spec, file, scalar(spec, item) ?? fail(`an array of ${one}, one of which is ${typeName(item)}`), previous), undefined);
    }
  }
}

/** A string, or a number written as one where the option takes a number; undefined for anything else. */
function scalar(spec: ConfigKey, raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw;
  if (spec.numeric && (typeof raw === 'number' || typeof raw === 'bigint')) return String(raw);
  return undefined;
}

/** One value as commander would store it: choices checked, the option's parser run, repeatable ones collected, paths made absolute. */
function parsed(spec: ConfigKey, file: ConfigFile, text: string, previous: unknown): unknown {
  if (spec.choices !== undefined && !spec.choices.includes(text)) {
    throw new UsageError(`${file.describe(spec.key)}: "${text}" is not one of ${spec.choices.map((choice) => `"${choice}"`).join(', ')}`);
  }
  const value = spec.path && text !== '' && !isAbsolute(text) ? resolve(configDir(file), text) : text;
  if (spec.parse !== undefined) {
    try {
      return spec.parse(value, previous);
    } catch (error) {
      if (error instanceof InvalidArgumentError || error instanceof UsageError) throw new UsageError(`${file.describe(spec.key)}: ${error.message}`);
      throw error;
    }
  }
  return spec.kind === 'strings' ? collect(value, previous as string[] | undefined) : value;
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'object') return 'a table';
  if (typeof value === 'string') return `a string ("${value.length > 40 ? `${value.slice(0, 40)}…` : value}")`;
  if (typeof value === 'boolean') return String(value);
  return `a ${typeof value === 'bigint' ? 'number' : typeof value} (${String(value)})`;
}

/** ` (did you mean "max-sessions"?)` for a near miss, a camelCase key or a `no-` key. */
function suggestion(key: string, known: readonly string[], keys: ReadonlyMap<string, ConfigKey>): string {
  const negated = /^no-(.+)$/.exec(key)?.[1];
  if (negated !== undefined && keys.get(negated)?.kind === 'boolean') return `; write ${negated} = false`;
  const dashed = key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`).replace(/_/g, '-');
  const near = known.filter((candidate) => candidate === dashed || editDistance(candidate, key) <= Math.min(2, Math.floor(key.length / 3)));
  return near.length > 0 ? ` (did you mean ${near.map((candidate) => `"${candidate}"`).join(' or ')}?)` : '';
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}
