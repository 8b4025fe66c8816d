/**
 * Forwards that cannot be served: a target nobody listens on, and the
 * server's --allow-remote and --allow-local policies. The connection that
 * cannot be served is reset, the tunnel stays up for the rest, and both
 * sides say why in their logs.
 */
import { describe, expect, it } from 'vitest';
import { remotePort, startConnect, startServe } from '../support/muxtun.js';
import { closedPort, converse, echoServer, exchange, freePort, type Conversation } from '../support/net.js';
import { LogLevel } from '../support/process.js';
import { Scope } from '../support/scope.js';

/** The local side saw the connection reset (TCP RST), with nothing received. */
function expectRefused(result: Conversation): void {
  expect(result.received.length).toBe(0);
  expect(['ECONNRESET', 'EPIPE'], `a reset, not ${result.error?.message ?? (result.ended ? 'a clean FIN' : 'nothing')}`).toContain(result.error?.code);
}

describe.concurrent('refusals', () => {
  it('-L to a closed port: the local connection is reset and both sides log why', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const dead = await closedPort();
    const server = await startServe({ scope });
    const [bad, good] = await Promise.all([freePort(), freePort()]);
    const client = await startConnect(server, { scope, local: [`${bad}:127.0.0.1:${dead}`, `${good}:127.0.0.1:${echo.port}`] });

    expectRefused(await converse(bad, 'hello?'));
    const serverLog = await server.process.waitForLog(new RegExp(`^dialling 127\\.0\\.0\\.1:${dead} failed: .*ECONNREFUSED`));
    expect(serverLog.level).toBe(LogLevel.warn);
    await client.process.waitForLog(new RegExp(`^the server could not serve a -L connection: dialling 127\\.0\\.0\\.1:${dead} failed: .*ECONNREFUSED`));
    // One failed dial does not hurt the session.
    expect((await exchange(good, 'still up')).toString()).toBe('still up');
  });

  it('-R to a closed port: the connection on the server side is reset and the client logs why', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const dead = await closedPort();
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, remote: [`127.0.0.1:0:127.0.0.1:${dead}`, `127.0.0.1:0:127.0.0.1:${echo.port}`] });

    expectRefused(await converse(remotePort(client, `127.0.0.1:${dead}`), 'hello?'));
    await client.process.waitForLog(new RegExp(`^dialling 127\\.0\\.0\\.1:${dead} failed: .*ECONNREFUSED`));
    expect((await exchange(remotePort(client, `127.0.0.1:${echo.port}`), 'still up')).toString()).toBe('still up');
  });

  it('--allow-remote: a -R outside the range is refused with the reason; connect exits 1 when it was the only forward', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope, args: ['--allow-remote', '9000-9100'] });
    const client = await startConnect(server, { scope, remote: ['127.0.0.1:8000:127.0.0.1:9'], wait: false });

    const exit = await client.process.waitForExit();
    expect(exit.code, client.process.tail()).toBe(1);
    const stderr = client.process.stderr.join('\n');
    expect(stderr).toContain("the server's --allow-remote does not include port 8000 (allowed: 9000-9100)");
    expect(stderr).toContain('ERR_MUXTUN_POLICY');
    expect(stderr).toMatch(/-R 127\.0\.0\.1:8000 -> 127\.0\.0\.1:9 could not be set up: .*use --keep-going to run without it \[ERR_MUXTUN_FORWARD_FAILED\]/);
    await server.process.waitForLog(/^refused -R: the server's --allow-remote does not include port 8000/);
  });

  it('--allow-remote with --keep-going: the refused -R is reported and the rest keep working', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const allowed = await freePort();
    const server = await startServe({ scope, args: ['--allow-remote', String(allowed)] });
    const outside = allowed === 65535 ? allowed - 1 : allowed + 1;
    const client = await startConnect(server, {
      scope,
      remote: [`127.0.0.1:${outside}:127.0.0.1:${echo.port}`, `127.0.0.1:${allowed}:127.0.0.1:${echo.port}`],
      args: ['--keep-going'],
    });

    const refusal = client.process.logs().find((entry) => /--allow-remote does not include/.test(entry.msg));
    expect(refusal?.msg, client.process.tail()).toBe(`the server's --allow-remote does not include port ${outside} (allowed: ${allowed})`);
    expect(refusal?.level).toBe(LogLevel.error);
    expect((await exchange(allowed, 'allowed')).toString()).toBe('allowed');
    expect(client.process.exit).toBeUndefined();
  });

  it('--allow-local: a -L to a target outside the pattern is refused and logged; the allowed one works', async (context) => {
    const scope = new Scope(context);
    const [allowedTarget, forbiddenTarget] = await Promise.all([echoServer(scope), echoServer(scope)]);
    const server = await startServe({ scope, args: ['--allow-local', `127.0.0.1:${allowedTarget.port}`] });
    const [ok, forbidden] = await Promise.all([freePort(), freePort()]);
    const client = await startConnect(server, {
      scope,
      local: [`${ok}:127.0.0.1:${allowedTarget.port}`, `${forbidden}:127.0.0.1:${forbiddenTarget.port}`],
    });

    expectRefused(await converse(forbidden, 'let me in'));
    const reason = `the server's --allow-local does not include 127.0.0.1:${forbiddenTarget.port}`;
    await server.process.waitForLog(`refused -L: ${reason}`);
    await client.process.waitForLog(`the server could not serve a -L connection: ${reason}`);
    expect(forbiddenTarget.connections).toHaveLength(0);
    expect((await exchange(ok, 'allowed')).toString()).toBe('allowed');
  });
});
