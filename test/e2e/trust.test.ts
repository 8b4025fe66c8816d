/**
 * Who may talk to whom: the token, a pinned fingerprint, and trust on
 * first use with a known_hosts file, each against a real server process.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startConnect, startServe } from '../support/muxtun.js';
import { echoServer, exchange, freePort } from '../support/net.js';
import { tempDir } from '../support/fs.js';
import { Scope } from '../support/scope.js';

describe.concurrent('trust', () => {
  it('a wrong token: connect exits 1 saying authentication failed, and no token shows up in any output', async (context) => {
    const scope = new Scope(context);
    const rightToken = 'right-token-6f1c2a9e4b';
    const wrongToken = 'wrong-token-d83b0c71a5';
    // Both at the chattiest level, so a token in any debug or trace line would show.
    const server = await startServe({ scope, token: rightToken, args: ['--log-level', 'trace'] });
    const client = await startConnect(server, { scope, token: wrongToken, local: [`${await freePort()}:127.0.0.1:9`], args: ['--log-level', 'trace'], wait: false });

    const exit = await client.process.waitForExit();
    expect(exit.code, client.process.tail()).toBe(1);
    const clientOutput = [...client.process.stderr, ...client.process.stdout].join('\n');
    expect(clientOutput).toMatch(/authentication failed/);
    expect(clientOutput).toContain('ERR_MUXTUN_AUTH');
    await server.process.waitForLog('authentication failed: wrong token');
    for (const token of [rightToken, wrongToken]) {
      expect(clientOutput).not.toContain(token);
      expect(server.process.stderr.join('\n')).not.toContain(token);
    }
    expect(server.process.logs().some((entry) => entry.msg === 'client authenticated')).toBe(false);
  });

  it('a fingerprint that does not match: exit 1, both fingerprints shown, nothing sent', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    const pinned = `sha256:${'0f'.repeat(32)}`;
    const client = await startConnect(server, { scope, trust: { fingerprint: pinned }, local: [`${await freePort()}:127.0.0.1:9`], wait: false });

    const exit = await client.process.waitForExit();
    expect(exit.code, client.process.tail()).toBe(1);
    const stderr = client.process.stderr.join('\n');
    expect(stderr).toMatch(/does not match the pinned fingerprint/);
    expect(stderr).toContain(`expected: ${pinned}`);
    expect(stderr).toContain(`got:      ${server.fingerprint}`);
    expect(stderr).toContain('ERR_MUXTUN_FINGERPRINT_MISMATCH');
    expect(stderr).not.toContain(server.token);
    expect(server.process.logs().some((entry) => entry.msg === 'client authenticated' || entry.msg === 'authentication failed: wrong token')).toBe(false);
  });

  it('trust on first use: records the server, trusts it again, refuses it loudly once its certificate changed', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const knownHosts = join(await tempDir('muxtun-e2e-', scope), 'known_hosts');
    const first = await startServe({ scope, name: 'serve (first identity)' });
    const local = await freePort();
    const forward = { local: [`${local}:127.0.0.1:${echo.port}`], trust: { knownHosts } };

    const recording = await startConnect(first, { scope, ...forward, name: 'connect #1' });
    await recording.process.waitForLog(/recorded its fingerprint in known_hosts/);
    const recorded = await readFile(knownHosts, 'utf8');
    expect(recorded).toContain(`127.0.0.1:${first.port}`);
    expect(recorded).toContain(first.fingerprint);
    expect((await exchange(local, 'first')).toString()).toBe('first');
    await recording.process.kill();

    const trusting = await startConnect(first, { scope, ...forward, name: 'connect #2' });
    expect(trusting.process.logs().some((entry) => /recorded/.test(entry.msg)), trusting.process.tail()).toBe(false);
    expect((await exchange(local, 'second')).toString()).toBe('second');
    await trusting.process.kill();
    expect(await readFile(knownHosts, 'utf8')).toBe(recorded);

    // Same address, new state dir: a new self-signed certificate.
    await first.process.kill();
    const impostor = await startServe({ scope, port: first.port, name: 'serve (new identity)' });
    expect(impostor.fingerprint).not.toBe(first.fingerprint);
    const refused = await startConnect(impostor, { scope, ...forward, name: 'connect #3', wait: false });
    const exit = await refused.process.waitForExit();
    expect(exit.code, refused.process.tail()).toBe(1);
    const stderr = refused.process.stderr.join('\n');
    expect(stderr).toContain('WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!');
    expect(stderr).toContain(first.fingerprint);
    expect(stderr).toContain(impostor.fingerprint);
    expect(stderr).toContain(knownHosts);
    expect(stderr).toContain('ERR_MUXTUN_HOST_KEY_CHANGED');
    expect(await readFile(knownHosts, 'utf8')).toBe(recorded);
    expect(impostor.process.logs().some((entry) => entry.msg === 'client authenticated')).toBe(false);
  });
});
