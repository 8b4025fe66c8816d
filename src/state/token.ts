import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileExclusive } from '../util/atomic-file.js';
import { readFileBounded } from '../util/bounded-read.js';
import { MuxtunStateError, StateErrorCode } from './errors.js';
import { SECRET_FILE_MODE, checkStateFile, ensureStateDir } from './state-dir.js';
import { errnoCode, errorMessage } from '../util/errors.js';

/** File name of the generated token inside the state directory. */
export const TOKEN_FILE = 'token';
/** Random bytes in a generated token (256 bits), encoded as base64url. */
export const TOKEN_BYTES = 32;
/** Largest token file read; tokens are one short line. */
export const MAX_TOKEN_FILE_BYTES = 4096;

/** The server's token from the state directory. */
export interface ServerToken {
  /** The token text (no trailing newline). */
  token: string;
  /** Where it is stored, so the operator can be told where to copy it from. */
  path: string;
  /** `true` when this call generated it. */
  created: boolean;
}

/**
 * Loads the server's shared-secret token from `stateDir/token`, generating
 * {@link TOKEN_BYTES} random bytes (base64url) and storing them with mode
 * 0600 the first time. Later starts reuse it so clients keep working.
 *
 * @throws {@link MuxtunStateError} `ERR_MUXTUN_STATE_DIR`,
 *   `ERR_MUXTUN_STATE_PERMISSIONS`, `ERR_MUXTUN_STATE_WRITE`,
 *   `ERR_MUXTUN_TOKEN_READ` or `ERR_MUXTUN_TOKEN_INVALID`
 */
export async function loadOrCreateToken(stateDir: string): Promise<ServerToken> {
  await ensureStateDir(stateDir);
  const path = join(stateDir, TOKEN_FILE);
  let created = false;
  if (!(await checkStateFile(path, 'secret'))) {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    try {
      // First writer wins, so two servers starting together share one token.
      created = await writeFileExclusive(path, `${token}\n`, SECRET_FILE_MODE);
    } catch (error) {
      throw new MuxtunStateError(StateErrorCode.STATE_WRITE, `Cannot write ${path}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }
  await checkStateFile(path, 'secret');
  return { token: await readTokenFile(path), path, created };
}

/**
 * Reads a token from a file: one line, trailing newline (and other trailing
 * whitespace) removed. File modes are not checked here because operator
 * token files may be shared on purpose (e.g. container secrets mounted 0444);
 * the state directory's own token is checked by {@link loadOrCreateToken}.
 *
 * @throws {@link MuxtunStateError} `ERR_MUXTUN_TOKEN_READ` (missing, no access,
 *   larger than {@link MAX_TOKEN_FILE_BYTES}) or `ERR_MUXTUN_TOKEN_INVALID`
 *   (empty, or more than one line)
 */
export async function readTokenFile(path: string): Promise<string> {
  let result;
  try {
    result = await readFileBounded(path, MAX_TOKEN_FILE_BYTES);
  } catch (error) {
    const code = errnoCode(error);
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : errorMessage(error);
    throw new MuxtunStateError(StateErrorCode.TOKEN_READ, `Cannot read token file ${path}: ${why}`, { cause: error });
  }
  if (result.tooLarge) {
    throw new MuxtunStateError(
      StateErrorCode.TOKEN_READ,
      `Token file ${path} is larger than the ${MAX_TOKEN_FILE_BYTES}-byte limit; a token is a single line`,
    );
  }
  const token = result.text.trimEnd();
  if (token === '') {
    throw new MuxtunStateError(StateErrorCode.TOKEN_INVALID, `Token file ${path} is empty`);
  }
  if (/[\r\n]/.test(token)) {
    throw new MuxtunStateError(
      StateErrorCode.TOKEN_INVALID,
      `Token file ${path} has more than one line; it must hold just the token`,
    );
  }
  return token;
}
