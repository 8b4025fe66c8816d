import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_TOKEN_FILE_BYTES, TOKEN_FILE, loadOrCreateToken, readTokenFile } from '../../src/state/index.js';
import { tempDir } from '../support/fs.js';
import { rejection } from '../support/wait.js';


describe('loadOrCreateToken', () => {
  it('creates a 32-byte base64url token with mode 0600 and reuses it', async () => {
    const stateDir = join(await tempDir(), 'state');
    const first = await loadOrCreateToken(stateDir);
    expect(first.created).toBe(true);
    expect(first.path).toBe(join(stateDir, TOKEN_FILE));
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.token, 'base64url')).toHaveLength(32);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect(await readFile(first.path, 'utf8')).toBe(`${first.token}\n`);

    const second = await loadOrCreateToken(stateDir);
    expect(second).toEqual({ ...first, created: false });
  });

  it('gives servers starting together the same token', async () => {
    const stateDir = join(await tempDir(), 'state');
    const results = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateToken(stateDir)));
    expect(new Set(results.map((result) => result.token)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
  });

  it('refuses a token others can read', async () => {
    const stateDir = join(await tempDir(), 'state');
    const { path } = await loadOrCreateToken(stateDir);
    await chmod(path, 0o644);
    const error = await rejection(loadOrCreateToken(stateDir));
    expect(error.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(error.message).toContain(`chmod 600 ${path}`);
  });
});

describe('readTokenFile', () => {
  it('trims the trailing newline', async () => {
    const path = join(await tempDir(), 'token');
    await writeFile(path, 'abc-def\r\n');
    expect(await readTokenFile(path)).toBe('abc-def');
  });

  it.each([
    ['empty', '', /empty/],
    ['only a newline', '\n', /empty/],
    ['two lines', 'a\nb\n', /more than one line/],
  ])('refuses a token file that is %s', async (_name, content, pattern) => {
    const path = join(await tempDir(), 'token');
    await writeFile(path, content);
    const error = await rejection(readTokenFile(path));
    expect(error.code).toBe('ERR_MUXTUN_TOKEN_INVALID');
    expect(error.message).toMatch(pattern);
    expect(error.message).toContain(path);
  });

  it('reports missing and oversized files as ERR_MUXTUN_TOKEN_READ', async () => {
    const dir = await tempDir();
    const missing = await rejection(readTokenFile(join(dir, 'nope')));
    expect(missing.code).toBe('ERR_MUXTUN_TOKEN_READ');
    expect(missing.message).toContain('no such file');

    const big = join(dir, 'big');
    await writeFile(big, 'x'.repeat(MAX_TOKEN_FILE_BYTES + 1));
    const tooLarge = await rejection(readTokenFile(big));
    expect(tooLarge.code).toBe('ERR_MUXTUN_TOKEN_READ');
    expect(tooLarge.message).toContain(`${MAX_TOKEN_FILE_BYTES}-byte limit`);
  });
});
