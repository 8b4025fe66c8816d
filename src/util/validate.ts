import { InvalidArgumentError } from '../errors.js';

/** A whole-number option: its range, and the unit its value is in (for messages). */
export interface IntegerRule {
  min: number;
  max: number;
  unit?: 'ms' | 'bytes';
}

/**
 * An invalid option value, naming the option by its field path
 * (`limits.maxSessions`, `session.heartbeatInterval`) so a caller that knows
 * the option under another name (the CLI's `--max-sessions`) can say it its way.
 */
export class OptionError extends InvalidArgumentError {
  readonly field: string;
  /** What the value must be, without the field's name: `an integer from 1 to 1000000`. */
  readonly expected: string;
  readonly rule: IntegerRule | undefined;

  constructor(field: string, expected: string, got: unknown, rule?: IntegerRule) {
    super(`${field} must be ${expected}, got ${describeValue(got)}`);
    this.field = field;
    this.expected = expected;
    this.rule = rule;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

/** `value`, if it is an integer within `rule`; else an {@link OptionError} naming `field`. */
export function checkInteger(field: string, value: unknown, rule: IntegerRule): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < rule.min || value > rule.max) {
    throw new OptionError(field, `an integer from ${rule.min} to ${rule.max}${rule.unit ? ` ${rule.unit}` : ''}`, value, rule);
  }
  return value;
}

/**
 * Fills `defaults` with the fields of `given` that are set, checking each
 * against its rule. Unknown fields are errors, not ignored: a misspelt
 * option would otherwise silently keep its default.
 */
export function resolveIntegers<T extends { [K in keyof T]: number }>(
  prefix: string,
  given: Partial<T> | undefined,
  defaults: Readonly<T>,
  rules: Readonly<Record<keyof T, IntegerRule>>,
): T {
  const resolved = { ...defaults };
  if (given === undefined) return resolved;
  if (given === null || typeof given !== 'object') throw new OptionError(prefix, 'an object', given);
  for (const [key, value] of Object.entries(given) as Array<[keyof T & string, unknown]>) {
    if (value === undefined) continue;
    // Own keys only: `toString` or `__proto__` must be unknown options, not Object.prototype's.
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (rule === undefined) throw new OptionError(`${prefix}.${key}`, `one of ${Object.keys(rules).join(', ')} (unknown option)`, value);
    (resolved as Record<string, number>)[key] = checkInteger(`${prefix}.${key}`, value, rule);
  }
  return resolved;
}
