import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MuxtunStateError, StateErrorCode } from './errors.js';
import { shellQuote } from '../util/shell-quote.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import { makeDirectory } from '../util/make-directory.js';
import { xdgBaseDir, type Env } from '../util/xdg.js';

/**
 * The state directory holds the server's private key and its token, so it
 * and its secret files must not be open to group or others. Like ssh with
 * `StrictModes`, muxtun refuses loose permissions rather than fixing them
 * silently: a loose mode may mean someone else already read the secret, and
 * the operator should know.
 *
 * Mode bits do not exist on Windows, so the checks are skipped there.
 */

/** Mode of the state directory and of every directory created on the way to it. */
export const STATE_DIR_MODE = 0o700;
/** Mode of secret state files (private key, token). */
export const SECRET_FILE_MODE = 0o600;
/** Mode of public state files (the server certificate). */
export const PUBLIC_FILE_MODE = 0o644;

/**
 * The default state directory: `$XDG_STATE_HOME/muxtun`, or
 * `~/.local/state/muxtun` when `XDG_STATE_HOME` is unset or not absolute.
 *
 * @param env - environment to read; defaults to `process.env`
 * @param home - home directory; defaults to `os.homedir()`
 */
export function defaultStateDir(env: Env = process.env, home: string = homedir()): string {
  return join(xdgBaseDir(env, 'XDG_STATE_HOME', home, join('.local', 'state')), 'muxtun');
}

/**
 * Makes sure `dir` exists (created with its missing parents, mode 0700)
 * and is private to its owner. Fails in bounded time, also where the file
 * system refuses to create directories (such as under /proc).
 *
 * @returns `created: true` when this call created the directory
 * @throws {@link MuxtunStateError} `ERR_MUXTUN_STATE_DIR` when it cannot be
 *   created (the message names the path and the reason) or is not a directory; `ERR_MUXTUN_STATE_PERMISSIONS` when group
 *   or others have any access (the message gives the `chmod 700` fix)
 */
export async function ensureStateDir(dir: string): Promise<{ created: boolean }> {
  let created = false;
  let info = await statOrUndefined(dir, 'state directory');
  if (info === undefined) {
    try {
      // Not mkdir({ recursive: true }): on /proc it loops for ever (see makeDirectory).
      ({ created } = await makeDirectory(dir, STATE_DIR_MODE));
    } catch (error) {
      throw new MuxtunStateError(
        StateErrorCode.STATE_DIR,
        `Cannot create state directory ${dir}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    info = await statOrUndefined(dir, 'state directory');
  }
  if (info === undefined || !info.isDirectory()) {
    throw new MuxtunStateError(
      StateErrorCode.STATE_DIR,
      `State directory ${dir} exists but is not a directory; move it away or choose another state directory.`,
    );
  }
  if (checksModes() && (info.mode & 0o077) !== 0) {
    throw new MuxtunStateError(
      StateErrorCode.STATE_PERMISSIONS,
      `State directory ${dir} is accessible by group or others (mode ${octal(info.mode)}); ` +
        "it holds the server's private key and token. Fix it with:\n" +
        `  chmod 700 ${shellQuote(dir)}`,
    );
  }
  return { created };
}

/**
 * Whether a state file may be shared: `secret` files (key, token) must have
 * no group/other bits at all; `public` ones (certificate) may be readable
 * but not writable by group/others.
 */
export type FileExposure = 'secret' | 'public';

/**
 * Checks the permissions of an existing state file.
 *
 * @returns `false` when the file does not exist, `true` when it exists and is fine
 * @throws {@link MuxtunStateError} `ERR_MUXTUN_STATE_PERMISSIONS` naming the
 *   file and the `chmod 600` (secret) or `chmod 644` (public) fix;
 *   `ERR_MUXTUN_STATE_DIR` when the path is not a regular file
 */
export async function checkStateFile(path: string, exposure: FileExposure): Promise<boolean> {
  const info = await statOrUndefined(path, 'state file');
  if (info === undefined) return false;
  if (!info.isFile()) {
    throw new MuxtunStateError(
      StateErrorCode.STATE_DIR,
      `State file ${path} is not a regular file; remove it so muxtun can recreate it.`,
    );
  }
  if (!checksModes()) return true;
  if (exposure === 'secret' && (info.mode & 0o077) !== 0) {
    throw new MuxtunStateError(
      StateErrorCode.STATE_PERMISSIONS,
      `Secret file ${path} is readable or writable by group or others (mode ${octal(info.mode)}). ` +
        'muxtun refuses to use a secret others could read or change. Fix it with:\n' +
        `  chmod 600 ${shellQuote(path)}\n` +
        'and consider replacing the secret if others may have read it.',
    );
  }
  if (exposure === 'public' && (info.mode & 0o022) !== 0) {
    throw new MuxtunStateError(
      StateErrorCode.STATE_PERMISSIONS,
      `File ${path} is writable by group or others (mode ${octal(info.mode)}); ` +
        'anyone able to change it could change the server identity. Fix it with:\n' +
        `  chmod 644 ${shellQuote(path)}`,
    );
  }
  return true;
}

function checksModes(): boolean {
  return process.platform !== 'win32';
}

async function statOrUndefined(path: string, what: string) {
  try {
    return await stat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new MuxtunStateError(StateErrorCode.STATE_DIR, `Cannot access ${what} ${path}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}
