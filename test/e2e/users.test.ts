/**
 * `muxtun users` and `serve --users` as a user runs them: `users add`
 * prints a token alone on stdout that then works against `serve --users`
 * (which makes up no token of its own), `users list` never shows a token,
 * `users remove` takes the user out, and a token rotation keeps the old one
 * working until it is removed.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runMuxtun, spawnMuxtun, startConnect } from '../support/muxtun.js';
import { echoServer, expectEcho, freePort } from '../support/net.js';
import { tempDir } from '../support/fs.js';

const TOKEN_LINE = /^[A-Za-z0-9_-]{43}$/;

async function users(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { exit, stdout, stderr } = await runMuxtun(['users', ...args]);
  return { code: exit.code, stdout, stderr };
}

describe('muxtun users with serve --users', () => {
  it('add prints a working token on a line of its own; list shows hash prefixes, never tokens; remove takes the user out', async () => {
    const dir = await tempDir('muxtun-users-e2e-');
    const file = join(dir, 'users.toml');

    const added = await users('add', 'alice', '--users', file, '--allow-local', '127.0.0.1:*', '--max-streams', '50');
    expect(added.code).toBe(0);
    expect(added.stdout.split('\n')).toHaveLength(1);
    expect(added.stdout).toMatch(TOKEN_LINE);
    const alice = added.stdout;
    expect(added.stderr).toContain('shown only this once');
    const bob = (await users('add', 'bob', '--users', file, '--allow-remote', '9000-9010')).stdout;
    expect(bob).toMatch(TOKEN_LINE);
    expect(await readFile(file, 'utf8')).not.toContain(alice);

    const listed = await users('list', '--users', file);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^alice {2}tokens: sha256:[0-9a-f]{7}… {2}allow-local: 127\.0\.0\.1:\* {2}max-streams: 50$/m);
    expect(listed.stdout).toMatch(/^bob {2}tokens: sha256:[0-9a-f]{7}… {2}allow-remote: 9000-9010$/m);
    expect(listed.stdout).not.toContain(alice);
    expect(listed.stdout).not.toContain(bob);

    // A second token for alice (rotation): both work.
    const rotated = await users('add-token', 'alice', '--users', file);
    expect(rotated.stdout).toMatch(TOKEN_LINE);

    const serve = spawnMuxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', join(dir, 'state'), '--log-format', 'json', '--users', file], { name: 'serve' });
    const port = Number(await serve.waitForStdout('the "listening on" line', (line) => /^muxtun server listening on .*:(\d+)$/.exec(line)?.[1]));
    const fingerprint = await serve.waitForStdout('the fingerprint line', (line) => /^fingerprint: (sha256:[0-9a-f]{64})/.exec(line)?.[1]);
    await serve.waitForStdout('the users line', (line) => (/^users: +2 in .* \(add one with: .* users add NAME --users /.test(line) ? true : undefined));
    await serve.waitForStdout('the connect line', (line) => (line.includes("MUXTUN_TOKEN=<the user's token>") ? true : undefined));
    // No token of its own, printed or stored.
    expect(serve.stdout.some((line) => line.startsWith('token:'))).toBe(false);

    const echo = await echoServer();
    for (const token of [alice, rotated.stdout]) {
      const local = await freePort();
      await startConnect({ port, fingerprint, token }, { local: [`${local}:127.0.0.1:${echo.port}`] });
      await expectEcho(local);
    }
    const wrong = await runMuxtun(['connect', `127.0.0.1:${port}`, '--fingerprint', fingerprint, '-L', `${await freePort()}:127.0.0.1:1`], { env: { MUXTUN_TOKEN: 'not-a-token-of-anyone' } });
    expect(wrong.exit.code).toBe(1);
    expect(wrong.stderr).toContain('ERR_MUXTUN_AUTH');
    await serve.waitForLog('client authenticated', { where: (entry) => entry.user === 'alice' });

    const removed = await users('remove', 'alice', '--users', file);
    expect(removed.code).toBe(0);
    expect((await users('list', '--users', file)).stdout).not.toMatch(/^alice/m);
    const again = await users('remove', 'alice', '--users', file);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('no user alice');
  });

  it('refuses a bad users file at start, naming FILE:line and the key', async () => {
    const dir = await tempDir('muxtun-users-e2e-');
    const file = join(dir, 'users.toml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, '[users.alice]\ntokens = []\nmax-stream = 5\n', { mode: 0o644 });
    const bad = await runMuxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', join(dir, 'state'), '--users', file]);
    expect(bad.exit.code).toBe(1);
    expect(bad.stderr).toContain(`${file}:3: users.alice.max-stream: unknown key`);
  });
});
