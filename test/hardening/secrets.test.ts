/**
 * The token and the server's key: never in a log line or an error message,
 * taken from files and the environment, stored privately, and refused when
 * stored where others can read them.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnMuxtun, startConnect, startServe } from '../support/muxtun.js';
import { echoServer, expectEcho, freePort } from '../support/net.js';
import { fileMode, tempDir } from '../support/fs.js';

async function tokenFile(token: string, mode = 0o600): Promise<string> {
  const path = join(await tempDir(), 'token');
  await writeFile(path, `${token}\n`, { mode });
  return path;
}

describe('the token stays out of logs and errors', () => {
  it('at --log-level trace, through a session with -L and -R traffic, a wrong-token attempt and shutdown', async () => {
    const token = `SECRET-right-${Math.random().toString(36).slice(2)}`;
    const wrong = `SECRET-wrong-${Math.random().toString(36).slice(2)}`;
    const echo = await echoServer();
    const serve = await startServe({ env: { MUXTUN_TOKEN: token }, logLevel: 'trace' });
    expect(serve.token).toBe(token);
    const lPort = await freePort();
    const connect = await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], remote: [`0:127.0.0.1:${echo.port}`], env: { MUXTUN_TOKEN: '' }, args: ['--token-file', await tokenFile(token)], logLevel: 'trace', fastHeartbeat: true });
    await expectEcho(lPort);
    await expectEcho(connect.remotePorts[0]!);

    const intruder = await startConnect(serve, { token: wrong, local: [`${await freePort()}:127.0.0.1:${echo.port}`], wait: false, logLevel: 'trace', fastHeartbeat: true });
    expect((await intruder.process.waitForExit(15_000)).code).toBe(1);
    const intruderOut = intruder.process.stderr.join('\n');
    expect(intruderOut).toContain('the server refused the connection: authentication failed: the token is not valid for this server [ERR_MUXTUN_AUTH]');
    await serve.process.waitForLog('authentication failed: wrong token');

    connect.process.signal('SIGTERM');
    await connect.process.waitForExit();
    serve.process.signal('SIGTERM');
    await serve.process.waitForExit();

    const logs = [serve.process.stderr, connect.process.stderr, connect.process.stdout, intruder.process.stderr, intruder.process.stdout].map((lines) => lines.join('\n'));
    for (const text of logs) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(wrong);
    }
    // Logging at trace did happen: the check above is not vacuous.
    expect(serve.process.logs().length).toBeGreaterThan(5);
    expect(connect.process.logs().some((l) => l.level === 20)).toBe(true);
    // The serve banner on stdout is the one place the token is shown, on purpose:
    // it is the ready-to-paste connect line for the operator.
    expect(serve.process.stdout.join('\n')).toContain(token);
    expect(serve.process.stdout.join('\n')).not.toContain(wrong);
  });

  it('--help of both commands says --token is visible to other users', async () => {
    for (const command of ['serve', 'connect']) {
      const help = spawnMuxtun([command, '--help']);
      expect((await help.waitForExit()).code).toBe(0);
      expect(help.stdout.join(' ').replace(/\s+/g, ' ')).toMatch(/--token <token> .*visible to other users in `ps`: prefer MUXTUN_TOKEN or --token-file/);
    }
  });
});

describe('where the token comes from', () => {
  it('serve and connect take it from --token-file and from MUXTUN_TOKEN; --token-file wins over the environment', async () => {
    const echo = await echoServer();
    const fromFile = await startServe({ args: ['--token-file', await tokenFile('file-token-0123456789')] });
    expect(fromFile.token).toBe('file-token-0123456789');
    const lPort = await freePort();
    await startConnect(fromFile, { local: [`${lPort}:127.0.0.1:${echo.port}`], env: { MUXTUN_TOKEN: 'not-this-one' }, args: ['--token-file', await tokenFile('file-token-0123456789')], fastHeartbeat: true });
    await expectEcho(lPort);

    const fromEnv = await startServe({ env: { MUXTUN_TOKEN: 'env-token-0123456789' } });
    expect(fromEnv.token).toBe('env-token-0123456789');
    const lPort2 = await freePort();
    await startConnect(fromEnv, { token: 'env-token-0123456789', local: [`${lPort2}:127.0.0.1:${echo.port}`], fastHeartbeat: true });
    await expectEcho(lPort2);
  });
});

describe('the state directory', () => {
  it('is created 0700 with the key and token 0600', async () => {
    const serve = await startServe();
    expect(await fileMode(join(serve.stateDir, '.'))).toBe(0o700);
    expect(await fileMode(join(serve.stateDir, 'server-key.pem'))).toBe(0o600);
    expect(await fileMode(join(serve.stateDir, 'token'))).toBe(0o600);
    expect(await fileMode(join(serve.stateDir, 'server-cert.pem'))).toBe(0o644);
  });

  it('serve refuses to start when the token, the key or the directory is open to others, and says how to fix it', async () => {
    const first = await startServe();
    await first.process.kill();
    const dir = first.stateDir;
    const cases: Array<{ path: string; loose: number; fixed: number; fix: string }> = [
      { path: join(dir, 'token'), loose: 0o644, fixed: 0o600, fix: `chmod 600 ${join(dir, 'token')}` },
      { path: join(dir, 'server-key.pem'), loose: 0o640, fixed: 0o600, fix: `chmod 600 ${join(dir, 'server-key.pem')}` },
      { path: dir, loose: 0o755, fixed: 0o700, fix: `chmod 700 ${dir}` },
    ];
    for (const { path, loose, fixed, fix } of cases) {
      await chmod(path, loose);
      const serve = spawnMuxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', dir]);
      const exit = await serve.waitForExit();
      const stderr = serve.stderr.join('\n');
      expect(exit.code, stderr).toBe(1);
      expect(stderr).toContain(fix);
      expect(stderr).toContain('[ERR_MUXTUN_STATE_PERMISSIONS]');
      expect(serve.stdout.join('\n')).not.toContain('listening');
      await chmod(path, fixed);
    }
    // Fixed as told, it starts again with the same identity.
    const again = await startServe({ stateDir: dir });
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(again.token).toBe(first.token);
  });
});
