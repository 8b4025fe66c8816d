/**
 * Binding a Unix socket that no other user can ever connect to, at a path
 * that at most one live process holds.
 *
 * The race: `listen(path)` creates the socket file with the process umask
 * (0755 or even 0777), and a `chmod 600` after it leaves a window in which
 * another user may connect. `process.umask(0o177)` around the bind would
 * close it, but the umask is process-wide: a directory that a concurrent
 * async `mkdir` creates in that window (libuv's thread pool does not wait
 * for the JavaScript thread) would get mode 0600, unusable; and worker
 * threads may not change the umask at all.
 *
 * So the socket is bound inside a fresh private directory (`mkdtemp`, mode
 * 0700: nobody else can reach anything in it), made 0600 there, and only
 * then given its real name with `link(2)`. A hard link names the same
 * socket with the same mode, so from the first moment the path exists it is
 * 0600 and listening. `link` also fails with EEXIST instead of replacing an
 * existing file, which makes "one live muxtun per path" atomic: of two
 * processes starting on one path, one gets EEXIST, finds the other live,
 * and refuses. (`rename` would silently take the path from a live owner.)
 *
 * File systems without hard links fall back to `rename` after the liveness
 * check, where only that narrow two-starters race remains.
 */
import { chmod, link, lstat, mkdtemp, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type net from 'node:net';
import { dirname, join } from 'node:path';
import { errnoCode, errorMessage } from '../util/errors.js';
import { ControlError, ControlErrorCode } from './errors.js';
import { probeSocket } from './probe.js';

/** Mode of the control socket: its owner only. */
export const CONTROL_SOCKET_MODE = 0o600;

/**
 * Longest socket path the OS takes (sun_path is 108 bytes on Linux, 104 on
 * macOS and the BSDs, each with a NUL). Longer ones are refused here: some
 * libuv versions truncate instead, binding a path nobody asked for.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Which file a bound socket is, so close removes only its own (not a successor's at the same path). */
export interface SocketFileIdentity {
  dev: number;
  ino: number;
}

/**
 * Makes `server` listen on `path` with mode 0600 (see the header for how).
 * The parent directory must exist. A stale socket file at `path` (nobody
 * listens on it) is replaced; anything else there is left alone.
 *
 * @throws {@link ControlError} `ERR_MUXTUN_CONTROL_IN_USE` when something
 *   live listens at `path`; `ERR_MUXTUN_CONTROL_SOCKET` when the path is too
 *   long, is not a socket, or binding fails.
 */
export async function bindPrivateSocket(server: net.Server, path: string): Promise<SocketFileIdentity> {
  checkLength(path);
  const dir = dirname(path);
  // Short name: the temporary path must fit in sun_path as the real one does.
  let tempDir: string;
  try {
    tempDir = await mkdtemp(join(dir, '.mx-'));
  } catch (error) {
    throw socketError(`cannot create a temporary directory in ${dir}: ${errorMessage(error)}`, error);
  }
  const tempPath = join(tempDir, 's');
  try {
    checkLength(tempPath);
    await listen(server, tempPath);
    await chmod(tempPath, CONTROL_SOCKET_MODE);
    await claim(tempPath, path);
    const info = await stat(path);
    return { dev: info.dev, ino: info.ino };
  } catch (error) {
    await closeServer(server);
    throw error;
  } finally {
    await unlink(tempPath).catch(() => {});
    await rmdir(tempDir).catch(() => {});
  }
}

/** Removes the socket file at `path` if it is still the one {@link bindPrivateSocket} bound. */
export async function removeOwnSocket(path: string, identity: SocketFileIdentity): Promise<void> {
  try {
    const info = await lstat(path);
    if (info.dev === identity.dev && info.ino === identity.ino) await unlink(path);
  } catch {
    // Already gone (removed by hand, or the directory went): nothing to clean up.
  }
}

function checkLength(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ControlError(
      ControlErrorCode.SOCKET,
      `control socket path ${path} is ${bytes} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows; choose a shorter one with --control`,
    );
  }
}

function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(socketError(`cannot listen on ${path}: ${errorMessage(error)}`, error));
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Gives the bound socket its real name, replacing a stale socket file at most once. */
async function claim(tempPath: string, path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await link(tempPath, path);
      return;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST' && attempt === 0) {
        await removeIfStale(path);
        continue;
      }
      if (code === 'EEXIST') throw inUse(path, 'another process claimed it at the same moment');
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
        // No hard links here (some FUSE and network file systems).
        await removeIfStale(path);
        await rename(tempPath, path).catch((cause: unknown) => {
          throw socketError(`cannot create ${path}: ${errorMessage(cause)}`, cause);
        });
        return;
      }
      throw socketError(`cannot create ${path}: ${errorMessage(error)}`, error);
    }
  }
}

/** Removes what is at `path` if it is a socket nobody listens on; refuses if it is live or not a socket. */
async function removeIfStale(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw socketError(`cannot look at ${path}: ${errorMessage(error)}`, error);
  }
  // Never remove a file that is not a socket: the user may have pointed --control at something else by mistake.
  if (!info.isSocket()) throw socketError(`${path} exists and is not a socket; not replacing it`);
  const probe = await probeSocket(path);
  switch (probe.state) {
    case 'absent':
      return;
    case 'live':
      throw inUse(path, `another muxtun (or another program) is listening there`);
    case 'unknown':
      throw inUse(path, `it answered ${probe.code}, so it may be in use`);
    case 'stale':
      // Left by a process that ended without removing it (killed, crashed).
      await unlink(path).catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') throw socketError(`cannot remove the stale socket ${path}: ${errorMessage(error)}`, error);
      });
  }
}

function inUse(path: string, why: string): ControlError {
  return new ControlError(
    ControlErrorCode.IN_USE,
    `control socket ${path} is in use: ${why}. Stop that muxtun, or choose another path with --control (or --no-control)`,
  );
}

function socketError(message: string, cause?: unknown): ControlError {
  return new ControlError(ControlErrorCode.SOCKET, `control socket: ${message}`, cause === undefined ? undefined : { cause });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });
}
