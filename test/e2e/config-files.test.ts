/**
 * A real serve and connect configured by files alone (issue 14): what the
 * in-process tests in test/cli/config.test.ts check with --check, here
 * carries bytes. serve reads its token, policy and limits from a file;
 * connect finds connect.toml in its config dir and needs no arguments.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { echoServer, expectEcho, freePort } from '../support/net.js';
import { spawnMuxtun, startServe } from '../support/muxtun.js';
import { tempDir } from '../support/fs.js';

const TOKEN = 'e2e-config-token-0123456789abcdef';

describe('config files', () => {
  it('serve --config and a bare `muxtun connect` with connect.toml carry a -L forward', async () => {
    const echo = await echoServer();
    const dir = await tempDir('muxtun-config-e2e-');
    const serveToml = join(dir, 'serve.toml');
    await writeFile(serveToml, [`token = "${TOKEN}"`, `allow-local = ["127.0.0.1:${echo.port}"]`, 'max-sessions = 4', ''].join('\n'), { mode: 0o600 });
    await chmod(serveToml, 0o600);
    const serve = await startServe({ args: ['--config', serveToml] });
    expect(serve.token).toBe(TOKEN);

    const configHome = join(dir, 'config');
    await mkdir(join(configHome, 'muxtun'), { recursive: true });
    await writeFile(join(configHome, 'muxtun', 'token'), `${TOKEN}\n`, { mode: 0o600 });
    const localPort = await freePort();
    await writeFile(
      join(configHome, 'muxtun', 'connect.toml'),
      [
        `server = "127.0.0.1:${serve.port}"`,
        'token-file = "token"',
        `fingerprint = "${serve.fingerprint}"`,
        `local = ["${localPort}:127.0.0.1:${echo.port}"]`,
        'log-format = "json"',
        'log-level = "debug"',
        '',
      ].join('\n'),
    );
    const connect = spawnMuxtun(['connect'], { name: 'connect', env: { XDG_CONFIG_HOME: configHome } });
    await connect.waitForLog('connected', { timeoutMs: 15_000 });
    await expectEcho(localPort);
  });
});
