import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkStateFile, defaultStateDir, ensureStateDir } from '../../src/state/index.js';
import { fileMode, tempDir } from '../support/fs.js';
import { rejection } from '../support/wait.js';


describe('defaultStateDir', () => {
  it('uses $XDG_STATE_HOME/muxtun when it is absolute', () => {
    expect(defaultStateDir({ XDG_STATE_HOME: '/var/lib/me' }, '/home/u')).toBe('/var/lib/me/muxtun');
  });

  it('falls back to ~/.local/state/muxtun when unset, empty or relative', () => {
    expect(defaultStateDir({}, '/home/u')).toBe('/home/u/.local/state/muxtun');
    expect(defaultStateDir({ XDG_STATE_HOME: '' }, '/home/u')).toBe('/home/u/.local/state/muxtun');
    expect(defaultStateDir({ XDG_STATE_HOME: 'state' }, '/home/u')).toBe('/home/u/.local/state/muxtun');
  });
});

describe('ensureStateDir', () => {
  it('creates missing directories recursively with mode 0700, once', async () => {
    const dir = join(await tempDir(), 'a', 'b', 'muxtun');
    expect(await ensureStateDir(dir)).toEqual({ created: true });
    expect(await fileMode(dir)).toBe(0o700);
    expect(await fileMode(join(dir, '..'))).toBe(0o700);
    expect(await ensureStateDir(dir)).toEqual({ created: false });
  });

  it('refuses a directory open to group or others and says how to fix it', async () => {
    const dir = await tempDir();
    await chmod(dir, 0o755);
    const error = await rejection(ensureStateDir(dir));
    expect(error.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(error.message).toContain(dir);
    expect(error.message).toContain('mode 0755');
    expect(error.message).toContain(`chmod 700 ${dir}`);
  });

  it('refuses a path that is a file', async () => {
    const file = join(await tempDir(), 'state');
    await writeFile(file, '');
    const error = await rejection(ensureStateDir(file));
    expect(error.code).toBe('ERR_MUXTUN_STATE_DIR');
    expect(error.message).toContain('not a directory');
  });

  it('quotes paths with spaces in the fix-it command', async () => {
    const dir = join(await tempDir(), 'my state');
    await mkdir(dir, { mode: 0o750 });
    await chmod(dir, 0o750);
    const error = await rejection(ensureStateDir(dir));
    expect(error.message).toContain(`chmod 700 '${dir}'`);
  });
});

describe('checkStateFile', () => {
  it('reports a missing file as false', async () => {
    expect(await checkStateFile(join(await tempDir(), 'nope'), 'secret')).toBe(false);
  });

  it('accepts 0600 secrets and 0644 public files', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'key'), 'k', { mode: 0o600 });
    await writeFile(join(dir, 'cert'), 'c', { mode: 0o644 });
    await chmod(join(dir, 'cert'), 0o644);
    expect(await checkStateFile(join(dir, 'key'), 'secret')).toBe(true);
    expect(await checkStateFile(join(dir, 'cert'), 'public')).toBe(true);
  });

  it('refuses a group-readable secret with the chmod 600 fix', async () => {
    const file = join(await tempDir(), 'token');
    await writeFile(file, 't');
    await chmod(file, 0o640);
    const error = await rejection(checkStateFile(file, 'secret'));
    expect(error.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(error.message).toContain(`chmod 600 ${file}`);
  });

  it('refuses a public file that others can write, with the chmod 644 fix', async () => {
    const file = join(await tempDir(), 'cert');
    await writeFile(file, 'c');
    await chmod(file, 0o666);
    const error = await rejection(checkStateFile(file, 'public'));
    expect(error.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(error.message).toContain(`chmod 644 ${file}`);
  });

  it('refuses a directory where a file belongs', async () => {
    const path = join(await tempDir(), 'token');
    await mkdir(path);
    expect((await rejection(checkStateFile(path, 'secret'))).code).toBe('ERR_MUXTUN_STATE_DIR');
  });
});
