import { randomBytes } from 'node:crypto';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from './errors.js';

/** Errors from `link()` on file systems without hard links (vfat, some FUSE/SMB mounts). */
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Publishes `data` at `path` atomically and only if `path` does not exist yet.
 * Returns `true` when this call created the file, `false` when another
 * process got there first (the caller should then read theirs).
 *
 * Why not plain write-then-rename: rename silently replaces. Two `muxtun
 * serve` processes starting together on a fresh state directory would each
 * rename their own key and certificate into place and could end up pairing
 * one process's key with the other's certificate. Instead the content is
 * written to a private temp file created with its final `mode` (never
 * readable by others, not even for a moment: no chmod afterwards), flushed,
 * and hard-linked to `path`; `link()` fails with EEXIST rather than replace,
 * so the first writer wins and readers never see a partial file.
 */
export async function writeFileExclusive(
  path: string,
  data: string,
  mode: number,
): Promise<boolean> {
  const dir = dirname(path);
  const temp = await writeTempBeside(path, data, mode);
  try {
    try {
      await link(temp, path);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') return false;
      if (code === undefined || !LINK_UNSUPPORTED.has(code)) throw error;
      // No hard links here: fall back to check-then-rename. The window between
      // the check and the rename is tiny; losing it means the last of two
      // simultaneous first starts wins, the same as plain rename.
      if (await exists(path)) return false;
      await rename(temp, path);
    }
    await syncDir(dir);
    return true;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** A new temp file beside `path`, created with `mode` (never looser, not even for a moment), holding `data`, flushed. */
async function writeTempBeside(path: string, data: string, mode: number): Promise<string> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  } finally {
    await handle.close();
  }
  return temp;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Make the new directory entry durable; best effort (not every platform can fsync a directory). */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the entry is a nicety; the data itself was synced.
  }
}

/**
 * Replaces `path` with `data` atomically: written to a temp file beside it
 * (created with `mode`), flushed, then renamed over it. A reader (a server
 * reloading the file) sees the old content or the new, never half of it.
 */
export async function writeFileReplacing(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  const temp = await writeTempBeside(path, data, mode);
  try {
    await rename(temp, path);
    await syncDir(dir);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
