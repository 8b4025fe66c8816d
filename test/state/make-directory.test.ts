import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureStateDir, recordKnownHost } from '../../src/state/index.js';
import { MakeDirectoryError, makeDirectory } from '../../src/util/make-directory.js';
import { rejection, within } from '../support/wait.js';

// Self-contained on purpose (no shared test helpers): the helpers are being reorganised.
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'muxtun-mkdir-'));
  dirs.push(dir);
  return dir;
}

/** The error a makeDirectory-like promise rejects with (MakeDirectoryError carries the path). */
const failure = (promise: Promise<unknown>): Promise<Error & { code?: string; path?: string }> => rejection(promise);

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const posix = process.platform !== 'win32';
const procfs = process.platform === 'linux' && existsSync('/proc/self');
const root = posix && process.getuid?.() === 0;

describe('makeDirectory', () => {
  it('creates every missing component with the mode, and says it created the directory', async () => {
    const base = await tempDir();
    const dir = join(base, 'a', 'b', 'c');
    expect(await makeDirectory(dir, 0o700)).toEqual({ created: true });
    expect((await stat(dir)).isDirectory()).toBe(true);
    if (posix) {
      expect(await mode(join(base, 'a'))).toBe(0o700);
      expect(await mode(join(base, 'a', 'b'))).toBe(0o700);
      expect(await mode(dir)).toBe(0o700);
    }
  });

  it('leaves an existing directory alone and reports created: false', async () => {
    const dir = join(await tempDir(), 'existing');
    await mkdir(dir);
    await chmod(dir, 0o755);
    expect(await makeDirectory(dir, 0o700)).toEqual({ created: false });
    if (posix) expect(await mode(dir)).toBe(0o755);
  });

  it('accepts a trailing separator and "." / ".." components', async () => {
    const base = await tempDir();
    expect(await makeDirectory(join(base, 'x', '..', 'y', '.') + '/', 0o700)).toEqual({ created: true });
    expect((await stat(join(base, 'y'))).isDirectory()).toBe(true);
  });

  it.runIf(posix)('follows a symbolic link to a directory', async () => {
    const base = await tempDir();
    await mkdir(join(base, 'real'));
    await symlink(join(base, 'real'), join(base, 'link'));
    expect(await makeDirectory(join(base, 'link', 'sub'), 0o700)).toEqual({ created: true });
    expect((await stat(join(base, 'real', 'sub'))).isDirectory()).toBe(true);
  });

  it('refuses a file where the directory should be', async () => {
    const file = join(await tempDir(), 'file');
    await writeFile(file, '');
    const error = await failure(makeDirectory(file, 0o700));
    expect(error).toBeInstanceOf(MakeDirectoryError);
    expect(error.code).toBe('ENOTDIR');
    expect(error.path).toBe(file);
    expect(error.message).toBe(`${file} exists and is not a directory (ENOTDIR)`);
  });

  it('refuses a file in the way of a parent, naming the file', async () => {
    const file = join(await tempDir(), 'file');
    await writeFile(file, '');
    const error = await failure(makeDirectory(join(file, 'a', 'b'), 0o700));
    expect(error.code).toBe('ENOTDIR');
    expect(error.message).toContain(`${file} exists and is not a directory`);
  });

  it.runIf(posix)('says so when a component is a symbolic link to nothing', async () => {
    const link = join(await tempDir(), 'dangling');
    await symlink(join(link, '..', 'missing-target'), link);
    const error = await failure(within(makeDirectory(join(link, 'state'), 0o700), 5000, 'it to settle'));
    expect(error.code).toBe('EEXIST');
    expect(error.message).toContain(`${link} is a symbolic link to a missing target`);
  });

  it.runIf(posix && !root)('names the directory that does not let it create entries (EACCES)', async () => {
    const locked = join(await tempDir(), 'locked');
    await mkdir(locked, { mode: 0o500 });
    try {
      const error = await failure(makeDirectory(join(locked, 'a', 'b'), 0o700));
      expect(error.code).toBe('EACCES');
      expect(error.path).toBe(join(locked, 'a'));
      expect(error.message).toContain(`no permission to create directories in ${locked}`);
    } finally {
      await chmod(locked, 0o700);
    }
  });

  // procfs answers ENOENT to mkdir of a child of an existing directory;
  // fs.mkdir({ recursive: true }) turned that into an endless loop.
  it.runIf(procfs)('fails fast under /proc, saying /proc does not allow creating directories', async () => {
    for (const dir of ['/proc/muxtun-test', '/proc/muxtun-test/a/b']) {
      const started = Date.now();
      const error = await failure(within(makeDirectory(dir, 0o700), 5000, 'it to settle'));
      expect(Date.now() - started).toBeLessThan(2000);
      expect(error).toBeInstanceOf(MakeDirectoryError);
      expect(error.code).toBe('ENOENT');
      expect(error.path).toBe('/proc/muxtun-test');
      expect(error.message).toBe('/proc does not allow creating directories (mkdir /proc/muxtun-test: ENOENT)');
    }
  });
});

describe.runIf(procfs)('state paths under /proc', () => {
  it('ensureStateDir fails fast with ERR_MUXTUN_STATE_DIR naming the path and the reason', async () => {
    const error = await failure(within(ensureStateDir('/proc/muxtun-test/state'), 5000, 'it to settle'));
    expect(error.code).toBe('ERR_MUXTUN_STATE_DIR');
    expect(error.message).toBe(
      'Cannot create state directory /proc/muxtun-test/state: ' +
        '/proc does not allow creating directories (mkdir /proc/muxtun-test: ENOENT)',
    );
    expect(error.cause).toBeInstanceOf(MakeDirectoryError);
  });

  it('recordKnownHost fails fast with ERR_MUXTUN_KNOWN_HOSTS_WRITE naming the file and the reason', async () => {
    const fingerprint = `sha256:${'ab'.repeat(32)}`;
    const error = await failure(within(recordKnownHost('/proc/muxtun-test/known_hosts', 'example.com:4443', fingerprint), 5000, 'it to settle'));
    expect(error.code).toBe('ERR_MUXTUN_KNOWN_HOSTS_WRITE');
    expect(error.message).toBe(
      'Cannot record example.com:4443 in known hosts file /proc/muxtun-test/known_hosts: ' +
        '/proc does not allow creating directories (mkdir /proc/muxtun-test: ENOENT)',
    );
  });
});
