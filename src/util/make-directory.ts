import { lstat, mkdir, stat } from 'node:fs/promises';
import { dirname, parse, resolve, sep } from 'node:path';
import { errnoCode, errorMessage } from './errors.js';

/**
 * Why not `fs.mkdir(path, { recursive: true })`: Node's recursive mkdir
 * (src/node_file.cc, MKDirp) reads ENOENT as "the parent is missing", creates
 * the parent and retries the child, with no bound. On file systems that
 * answer ENOENT for a child of a directory that does exist (procfs: `mkdir
 * /proc/x` is ENOENT while `mkdir /proc` is EEXIST) it alternates between the
 * two for ever: the sync form spins a core with the event loop frozen, the
 * promise form never settles. muxtun then sat silent on a `--state-dir` or
 * `--known-hosts` under /proc.
 *
 * {@link makeDirectory} walks the path once, from the root down, one
 * component at a time: at most two `stat`s and one non-recursive `mkdir` per
 * component, and every failure becomes a {@link MakeDirectoryError} that
 * says which component failed and why.
 */

/** A directory could not be made; `code` is the errno (`ENOENT`, `EACCES`, `ENOTDIR`...). */
export class MakeDirectoryError extends Error {
  /** The errno name of the failure. */
  readonly code: string;
  /** The path component that failed (absolute); may be an ancestor of the requested path. */
  readonly path: string;

  constructor(code: string, path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MakeDirectoryError';
    this.code = code;
    this.path = path;
  }
}

/**
 * Makes sure `path` is a directory, creating it and any missing parents with
 * `mode` (less the umask, as `mkdir` does). Existing directories are left as
 * they are. Symbolic links to directories are followed.
 *
 * Bounded: one pass over the components of `path`, no retries. A directory
 * created by someone else at the same moment (EEXIST) counts as existing.
 *
 * @param path - directory to make; relative paths are resolved against the cwd
 * @param mode - mode of every directory this call creates, e.g. `0o700`
 * @returns `created: true` when this call created `path` itself
 * @throws {@link MakeDirectoryError} naming the failing component and the
 *   reason, e.g. `/proc does not allow creating directories (mkdir
 *   /proc/muxtun: ENOENT)` or `/tmp/x exists and is not a directory (ENOTDIR)`
 */
export async function makeDirectory(path: string, mode: number): Promise<{ created: boolean }> {
  const target = resolve(path);
  let created = false;
  for (const component of ancestorsAndSelf(target)) {
    created = false;
    if (await isDirectory(component)) continue;
    try {
      await mkdir(component, { mode });
      created = true;
    } catch (error) {
      // Someone else made it in between (or the OS answers EEXIST/EROFS/EACCES
      // for a directory that exists): fine as long as it is a directory now.
      if (await isDirectory(component)) continue;
      throw await mkdirFailure(component, error);
    }
  }
  return { created };
}

/** `/a/b/c` → `/a`, `/a/b`, `/a/b/c` (the root itself is never created). */
function ancestorsAndSelf(target: string): string[] {
  const { root } = parse(target);
  const names = target.slice(root.length).split(sep).filter((name) => name !== '');
  const paths: string[] = [];
  let current = root;
  for (const name of names) {
    current = current === root ? `${root}${name}` : `${current}${sep}${name}`;
    paths.push(current);
  }
  return paths;
}

/**
 * `true` for a directory (or a link to one), `false` when nothing is there;
 * throws for something that is not a directory, or that cannot be looked at.
 */
async function isDirectory(path: string): Promise<boolean> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return false;
    throw failure(code, path, lookupReason(code, path), error);
  }
  if (info.isDirectory()) return true;
  throw new MakeDirectoryError('ENOTDIR', path, `${path} exists and is not a directory (ENOTDIR)`);
}

async function mkdirFailure(path: string, error: unknown): Promise<MakeDirectoryError> {
  const code = errnoCode(error);
  const parent = dirname(path);
  const call = `mkdir ${path}: ${code ?? errorMessage(error)}`;
  switch (code) {
    case 'EEXIST':
      // Exists, yet stat says nothing is there: a symbolic link to nowhere.
      if (await isSymbolicLink(path)) {
        return failure(code, path, `${path} is a symbolic link to a missing target (${call})`, error);
      }
      return failure(code, path, `${path} appeared and vanished while it was being created (${call})`, error);
    case 'ENOENT':
      // The parent was just seen to be a directory, so this is not "missing
      // parent": the file system refuses new entries (procfs does this).
      return failure(code, path, `${parent} does not allow creating directories (${call})`, error);
    case 'EACCES':
    case 'EPERM':
      return failure(code, path, `no permission to create directories in ${parent} (${call})`, error);
    case 'EROFS':
      return failure(code, path, `${parent} is on a read-only file system (${call})`, error);
    case 'ENOSPC':
    case 'EDQUOT':
      return failure(code, path, `no space left to create a directory in ${parent} (${call})`, error);
    case 'ENOTDIR':
      return failure(code, path, `${parent} is not a directory (${call})`, error);
    default:
      return failure(code, path, `cannot create ${path} (${call})`, error);
  }
}

function lookupReason(code: string | undefined, path: string): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `no permission to look up ${path} (${code})`;
    case 'ENOTDIR':
      return `${dirname(path)} is not a directory (ENOTDIR)`;
    case 'ELOOP':
      return `too many symbolic links in ${path} (ELOOP)`;
    case 'ENAMETOOLONG':
      return `${path} is too long a name (ENAMETOOLONG)`;
    default:
      return `cannot look up ${path} (${code ?? 'unknown error'})`;
  }
}

function failure(code: string | undefined, path: string, message: string, cause: unknown): MakeDirectoryError {
  return new MakeDirectoryError(code ?? 'UNKNOWN', path, message, { cause });
}

async function isSymbolicLink(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSymbolicLink();
  } catch {
    return false;
  }
}
