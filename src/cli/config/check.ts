import { describeFailure } from '../../util/errors.js';
import { UsageError } from '../usage-error.js';
import { describeOrigin, type Origin, type Settings } from './settings.js';

/**
 * What `--check` prints: every setting as `key = value` in TOML, with
 * where the value came from, secrets masked. Unset settings are comments,
 * so the output reads (and parses) as a config file of its own.
 */

/** A value as the command resolved it, shown in place of the raw option value. */
export interface Shown {
  value: unknown;
  origin: Origin;
}

/** Shown instead of a secret. */
export const MASK = '********';

export interface CheckReport {
  /** Comment lines before the settings. */
  header: readonly string[];
  /** Settings that are not options (connect's `server`), shown first. */
  extra?: ReadonlyArray<readonly [key: string, shown: Shown | undefined]>;
  /** By key: what the command resolved (a default it fills in, the token from the environment...). */
  shown: Readonly<Record<string, Shown | undefined>>;
  /** Keys whose values are masked. */
  secrets: readonly string[];
  /** Comment lines after the settings (fingerprint, trust...). */
  footer: readonly string[];
}

/**
 * Renders the report. For each key of the command, in the order of its
 * options: what the command resolved (`shown`) from a flag, the file or the
 * environment; else what a flag or the file set; else the default the
 * command resolved or commander's; else `# key: not set`.
 */
export function formatCheck(settings: Settings, report: CheckReport): string {
  const rows: Array<[setting: string, origin: string]> = [];
  const add = (key: string, shown: Shown | undefined): void => {
    if (shown === undefined || shown.value === undefined) {
      rows.push([`# ${key}: not set`, '']);
      return;
    }
    const value = report.secrets.includes(key) ? MASK : shown.value;
    rows.push([`${key} = ${toml(value, settings.keys.get(key)?.numeric === true)}`, describeOrigin(shown.origin)]);
  };
  for (const [key, shown] of report.extra ?? []) add(key, shown);
  for (const spec of settings.keys.values()) {
    const origin = settings.origin(spec.attribute);
    const value = settings.values[spec.attribute];
    const resolved = report.shown[spec.key];
    if (resolved !== undefined && resolved.origin.kind !== 'default') add(spec.key, resolved);
    else if (origin.kind !== 'default') add(spec.key, { value, origin });
    else add(spec.key, resolved ?? (value === undefined ? undefined : { value, origin }));
  }
  const width = Math.min(48, Math.max(...rows.map(([setting, origin]) => (origin === '' ? 0 : setting.length))));
  const lines = rows.map(([setting, origin]) => (origin === '' ? setting : `${setting.padEnd(width)}  # ${origin}`));
  return [...report.header.map(comment), ...lines, ...report.footer.map(comment)].join('\n') + '\n';
}

function comment(line: string): string {
  return line === '' ? '' : `# ${line}`;
}

/** A value as TOML: strings quoted, numbers (and numeric strings of numeric keys) bare, arrays in brackets. */
function toml(value: unknown, numeric: boolean): string {
  if (Array.isArray(value)) return `[${value.map((item) => toml(item, numeric)).join(', ')}]`;
  if (typeof value === 'string') return numeric && /^\d+(\.\d+)?$/.test(value) ? value : JSON.stringify(value);
  return String(value);
}

/**
 * `--check` answers 0 (valid) or 2 (not): whatever stops the settings from
 * resolving (an unreadable certificate, a bad token file) is a usage error.
 */
export async function checkOnly<T>(resolving: Promise<T>): Promise<T> {
  try {
    return await resolving;
  } catch (error) {
    throw error instanceof UsageError ? error : new UsageError(describeFailure(error));
  }
}
