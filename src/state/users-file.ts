import { stat } from 'node:fs/promises';
import { parse, stringify, TomlError } from 'smol-toml';
import { MuxtunError } from '../errors.js';
import { writeFileReplacing } from '../util/atomic-file.js';
import { readFileBounded } from '../util/bounded-read.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import { shellQuote } from '../util/shell-quote.js';
import { tomlLayout, type TomlTable } from '../util/toml-layout.js';
import { MuxtunStateError, StateErrorCode } from './errors.js';

/**
 * The users file of `serve --users` (TOML), one table per user:
 *
 *     [users.alice]
 *     tokens = ["sha256:9f86d08…"]          # SHA-256 of each token: the file is not a secret
 *     allow-local = ["db.internal:5432"]    # instead of serve's --allow-local, for alice
 *     allow-remote = ["9000-9010"]          # instead of --allow-remote
 *     max-streams = 200                     # instead of --max-streams (and max-remote-listeners)
 *     max-sessions = 2                      # alice's sessions at once (no default of its own)
 *
 * This module knows the file: its tables, keys, value types and lines.
 * What the values mean (patterns, port ranges, hash format, limits) is the
 * tunnel layer's to check; {@link UsersFile.where} names the line for its errors.
 *
 * The file holds no secret, but it decides who gets in: like ssh's
 * authorized_keys, one that group or others can write is refused.
 */

export const UsersFileErrorCode = {
  /** The users file cannot be read (missing, no access, too large). */
  READ: 'ERR_MUXTUN_USERS_READ',
  /** The users file does not parse or holds a bad value; the message names FILE:line and the key. */
  INVALID: 'ERR_MUXTUN_USERS_INVALID',
  /** Writing the users file failed. */
  WRITE: 'ERR_MUXTUN_USERS_WRITE',
} as const;
export type UsersFileErrorCode = (typeof UsersFileErrorCode)[keyof typeof UsersFileErrorCode];

export class UsersFileError extends MuxtunError {
  constructor(code: UsersFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The largest users file read (thousands of users). */
export const MAX_USERS_FILE_BYTES = 1024 * 1024;
/** Mode of a users file muxtun creates: readable by the server's account whoever it is, written by its owner only. */
export const USERS_FILE_MODE = 0o644;

/** One user's table as written: values as text and numbers, not yet checked for meaning. */
export interface UserRecord {
  name: string;
  tokens: string[];
  allowLocal?: string[];
  allowRemote?: string[];
  maxStreams?: number;
  maxRemoteListeners?: number;
  maxSessions?: number;
}

/** The key of each UserRecord field in the file. */
export const USER_KEYS = {
  tokens: 'tokens',
  allowLocal: 'allow-local',
  allowRemote: 'allow-remote',
  maxStreams: 'max-streams',
  maxRemoteListeners: 'max-remote-listeners',
  maxSessions: 'max-sessions',
} as const satisfies Record<Exclude<keyof UserRecord, 'name'>, string>;
type Field = keyof typeof USER_KEYS;
const FIELD_OF_KEY = new Map<string, Field>(Object.entries(USER_KEYS).map(([field, key]) => [key, field as Field]));

/** A users file read. */
export interface UsersFile {
  path: string;
  users: UserRecord[];
  /** `FILE:line: users.NAME.KEY` of a user's key (or its table), to begin an error about its value. */
  where(name: string, field?: Field): string;
}

/**
 * Reads a users file and checks its form: only `[users.NAME]` tables, known
 * keys, values of the right type.
 *
 * @throws {@link UsersFileError} `ERR_MUXTUN_USERS_READ` or
 *   `ERR_MUXTUN_USERS_INVALID` (`FILE:line: users.NAME.KEY: …`);
 *   {@link MuxtunStateError} `ERR_MUXTUN_STATE_PERMISSIONS` when group or
 *   others can write it (the message gives the chmod)
 */
export async function readUsersFile(path: string): Promise<UsersFile> {
  return (await readDocument(path, false)).file;
}

/**
 * Changes a users file: `edit` gets its users and returns the new list
 * (and may throw to change nothing). Only the tables of users that changed
 * are rewritten, and a removed user goes with the comment lines right above
 * its table; the rest of the file, comments included, stays as it was.
 * Created (mode 0644) if missing. The write is atomic (a temp file renamed
 * over it): a server reloading the file sees the old or the new one, never half.
 */
export async function editUsersFile(path: string, edit: (users: UserRecord[]) => UserRecord[] | Promise<UserRecord[]>): Promise<{ before: UserRecord[]; after: UserRecord[] }> {
  const { file, text, tables, complete, mode } = await readDocument(path, true);
  if (!complete) {
    // Never write what we cannot follow: a table's end misread would cut or duplicate a user.
    throw new UsersFileError(UsersFileErrorCode.INVALID, `${path}: muxtun cannot tell where each [users.NAME] table ends in this file, so it will not rewrite it; edit it by hand`);
  }
  const after = await edit(file.users.map((u) => structuredClone(u)));
  const lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  const byName = new Map(after.map((u) => [u.name, u]));
  // Bottom up, so the line numbers of the tables above stay right.
  for (const [name, table] of [...tables.entries()].sort((a, b) => b[1].line - a[1].line)) {
    const now = byName.get(name);
    if (now === undefined) {
      const blankAfter = lines[table.lastLine]?.trim() === '' ? 1 : 0;
      lines.splice(table.firstLine - 1, table.lastLine - table.firstLine + 1 + blankAfter);
    } else if (JSON.stringify(now) !== JSON.stringify(file.users.find((u) => u.name === name))) {
      lines.splice(table.line - 1, table.lastLine - table.line + 1, ...renderUser(now));
    }
  }
  if (lines.length === 0) lines.push('# muxtun users (serve --users): one [users.NAME] table per user.', '# Tokens are kept as sha256: hashes only. Edit with `muxtun users add|remove|list`.');
  for (const user of after.filter((u) => !tables.has(u.name))) {
    if (lines.at(-1)?.trim() !== '') lines.push('');
    lines.push(...renderUser(user));
  }
  try {
    await writeFileReplacing(path, `${lines.join('\n')}\n`, mode);
  } catch (error) {
    throw new UsersFileError(UsersFileErrorCode.WRITE, `Cannot write users file ${path}: ${errorMessage(error)}`, { cause: error });
  }
  return { before: file.users, after };
}

/** One user's table, as the file holds it. */
export function renderUser(user: UserRecord): string[] {
  const table: Record<string, string[] | number> = {};
  for (const [field, key] of Object.entries(USER_KEYS) as Array<[Field, string]>) {
    const value = user[field];
    if (value !== undefined) table[key] = value;
  }
  return stringify({ users: { [user.name]: table } }).trimEnd().split('\n');
}

async function readDocument(path: string, missingIsEmpty: boolean): Promise<{ file: UsersFile; text: string; tables: Map<string, TomlTable>; complete: boolean; mode: number }> {
  let text: string;
  let mode = USERS_FILE_MODE;
  try {
    const info = await stat(path);
    mode = info.mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o022) !== 0) {
      throw new MuxtunStateError(
        StateErrorCode.STATE_PERMISSIONS,
        `Users file ${path} can be written by group or others (mode ${mode.toString(8).padStart(4, '0')}); whoever can write it can give themselves access. Fix it with:\n  chmod go-w ${shellQuote(path)}`,
      );
    }
    const read = await readFileBounded(path, MAX_USERS_FILE_BYTES);
    if (read.tooLarge) throw new UsersFileError(UsersFileErrorCode.READ, `Users file ${path} is larger than the ${MAX_USERS_FILE_BYTES}-byte limit`);
    text = read.text;
  } catch (error) {
    if (error instanceof MuxtunError) throw error;
    const code = errnoCode(error);
    if (code === 'ENOENT' && missingIsEmpty) text = '';
    else {
      const why = code === 'ENOENT' ? `no such file (create it with: muxtun users add NAME --users ${shellQuote(path)})` : code === 'EACCES' ? 'permission denied' : errorMessage(error);
      throw new UsersFileError(UsersFileErrorCode.READ, `Cannot read users file ${path}: ${why}`, { cause: error });
    }
  }
  const { users, tables, keyLines, complete } = parseUsers(path, text);
  const where = (name: string, field?: Field): string => {
    const line = (field && keyLines.get(`users.${name}.${USER_KEYS[field]}`)) ?? tables.get(name)?.line;
    return `${path}${line === undefined ? '' : `:${line}`}: users.${name}${field ? `.${USER_KEYS[field]}` : ''}`;
  };
  return { file: { path, users, where }, text, tables, complete, mode };
}

/**
 * Parses a users file's text and checks its form; errors name `path:line`
 * and the key. Also returns where things are: each user's table, every
 * key's line (`users.NAME.KEY`), and whether the layout scan followed the
 * whole file (see util/toml-layout.ts).
 */
export function parseUsers(path: string, text: string): { users: UserRecord[]; tables: Map<string, TomlTable>; keyLines: Map<string, number>; complete: boolean } {
  const invalid = (line: number | undefined, message: string): UsersFileError => new UsersFileError(UsersFileErrorCode.INVALID, `${path}:${line ?? 1}: ${message}`);
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) throw invalid(error.line, error.message.split('\n')[0]!.replace(/^Invalid TOML document: /, 'not valid TOML: '));
    throw error;
  }
  const layout = tomlLayout(text);
  const tables = new Map<string, TomlTable>();
  for (const table of layout.tables) {
    if (table.path[0] !== 'users') throw invalid(table.line, `[${table.path.join('.')}]: unknown table (a users file has only [users.NAME] tables)`);
    if (table.path.length === 2) tables.set(table.path[1]!, table);
    else if (table.path.length > 2) throw invalid(table.line, `[${table.path.join('.')}]: write each user as one [users.NAME] table`);
  }
  for (const { path: tablePath, line } of layout.arrayTables) throw invalid(line, `[[${tablePath.join('.')}]]: unknown table (a users file has only [users.NAME] tables)`);
  for (const key of Object.keys(document)) {
    if (key !== 'users') throw invalid(layout.keyLines.get(key), `${key}: unknown key (a users file has only [users.NAME] tables)`);
  }
  const given = document.users ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalid(layout.keyLines.get('users'), 'users: must be [users.NAME] tables');
  const users: UserRecord[] = [];
  for (const [name, value] of Object.entries(given as Record<string, unknown>)) {
    const where = `users.${name}`;
    const table = tables.get(name);
    if (table === undefined) throw invalid(layout.tables.find((t) => t.path.length === 1)?.line ?? layout.keyLines.get('users'), `${where}: write each user as its own [users.${name}] table`);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(table.line, `${where}: must be a table`);
    const user: UserRecord = { name, tokens: [] };
    let hasTokens = false;
    for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
      const line = layout.keyLines.get(`${where}.${key}`) ?? table.line;
      const field = FIELD_OF_KEY.get(key);
      if (field === undefined) throw invalid(line, `${where}.${key}: unknown key (known: ${Object.values(USER_KEYS).join(', ')})`);
      const wrong = (what: string): UsersFileError => invalid(line, `${where}.${key}: must be ${what}, got ${describe(raw)}`);
      if (field === 'tokens' || field === 'allowLocal' || field === 'allowRemote') {
        if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) throw wrong('a list of strings');
        user[field] = raw as string[];
        hasTokens ||= field === 'tokens';
      } else {
        if (typeof raw !== 'number' || !Number.isInteger(raw)) throw wrong('a whole number');
        user[field] = raw;
      }
    }
    if (!hasTokens) throw invalid(table.line, `${where}.tokens: missing (a list of sha256: token hashes; may be empty)`);
    users.push(user);
  }
  return { users, tables, keyLines: layout.keyLines, complete: layout.complete };
}

const describe = (value: unknown): string => (typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a table' : String(value));
