import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeDirectory } from '../../src/util/make-directory.js';

/**
 * A file system that behaves like procfs below one directory: `mkdir` of
 * anything inside it fails with ENOENT although its parent exists. This is
 * what sent fs.mkdir({ recursive: true }) into an endless loop; here it runs
 * on every platform, and counts the system calls to show the walk is bounded.
 */
const fsControl = vi.hoisted(() => ({ refuseUnder: '', mkdirCalls: [] as string[] }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    mkdir: async (path: string, options?: Parameters<typeof actual.mkdir>[1]) => {
      fsControl.mkdirCalls.push(String(path));
      if (fsControl.refuseUnder !== '' && String(path).startsWith(fsControl.refuseUnder)) {
        throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${path}'`), {
          code: 'ENOENT',
          errno: -2,
          syscall: 'mkdir',
          path,
        });
      }
      return actual.mkdir(path, options);
    },
  };
});

const dirs: string[] = [];
afterEach(async () => {
  fsControl.refuseUnder = '';
  fsControl.mkdirCalls.length = 0;
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('makeDirectory on a file system that answers ENOENT for new entries', () => {
  it('tries each missing component once and fails with the parent named', async () => {
    const base = await mkdtemp(join(tmpdir(), 'muxtun-mkdir-'));
    dirs.push(base);
    fsControl.refuseUnder = base + sep;
    const error = await makeDirectory(join(base, 'a', 'b', 'c'), 0o700).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string; path?: string },
    );
    expect(error?.code).toBe('ENOENT');
    expect(error?.path).toBe(join(base, 'a'));
    expect(error?.message).toBe(`${base} does not allow creating directories (mkdir ${join(base, 'a')}: ENOENT)`);
    // One attempt at the first missing component; nothing retried, nothing deeper tried.
    expect(fsControl.mkdirCalls).toEqual([join(base, 'a')]);
  });
});
