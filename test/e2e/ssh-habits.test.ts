/**
 * What ssh users expect of the command line, each found by trying muxtun as
 * a new user would: stop on time with connections open, retry a server
 * that is not up yet, say only what is true, one debug line per
 * connection with its byte counts, refuse what is a typo or a weak token,
 * and a banner that shows the right command once.
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/fs.js';
import { runMuxtun, startConnect, startServe } from '../support/muxtun.js';
import { converse, EchoClient, echoServer, exchange, freePort } from '../support/net.js';
import { Scope } from '../support/scope.js';
import { within } from '../support/wait.js';

describe.concurrent('stopping connect', () => {
  it('with an idle -L connection open and --drain-timeout 1: exits 0 within about 3 s and ends that connection', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`], args: ['--drain-timeout', '1'] });
    const open = await EchoClient.connect(local);
    expect((await open.roundTrip('before stop')).toString()).toBe('before stop');

    const started = performance.now();
    client.process.signal('SIGTERM');
    const exit = await client.process.waitForExit(5_000);
    expect(exit.code, client.process.tail()).toBe(0);
    expect(performance.now() - started).toBeLessThan(3_500);
    await within(open.ended, 2_000, 'the open -L connection to be ended by the stop');
  });

  it('a second SIGINT ends it at once, saying so', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`], args: ['--drain-timeout', '30'] });
    const open = await EchoClient.connect(local);
    expect((await open.roundTrip('x')).toString()).toBe('x');
    client.process.signal('SIGINT');
    await client.process.waitForLog(/^shutting down/);
    client.process.signal('SIGINT');
    const exit = await client.process.waitForExit(3_000);
    expect(exit.code).toBe(130);
    expect(client.process.stderr.join('\n')).toContain('SIGINT again: stopping now without waiting for open connections');
  });
});

describe.concurrent('the first connection is retried like any other', () => {
  it('connect started before serve is up connects once it is, and forwards', { timeout: 30_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    // An identity made in advance, so the client can pin it before the server runs.
    const stateDir = `${await tempDir('muxtun-e2e-', scope)}/state`;
    const first = await startServe({ scope, stateDir, name: 'serve (identity)' });
    await first.process.stop();
    const port = await freePort();
    const local = await freePort();
    const client = await startConnect(first, { scope, port, local: [`${local}:127.0.0.1:${echo.port}`], wait: false });
    // Two failed attempts, each logged once with its next delay, and nothing that claims to listen.
    await client.process.waitForLog(/^cannot reach the server; next attempt in \d+\.\d s$/);
    const second = await client.process.waitForLog(/^cannot reach the server; next attempt in/, { after: client.process.mark() });
    expect(second.error).toMatch(/connection refused/);
    expect(client.process.logs().some((l) => l.msg === '-L listening')).toBe(false);

    await startServe({ scope, stateDir, port, token: first.token, name: 'serve (late)' });
    await client.process.waitForLog('connected', { timeoutMs: 20_000 });
    expect((await exchange(local, 'late but there')).toString()).toBe('late but there');
  });

  it('a wrong token is not retried: exit 1 at once, and "-L listening" was never said', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, local: [`${await freePort()}:127.0.0.1:9`], token: 'a-wrong-token-of-enough-length', wait: false });
    const exit = await client.process.waitForExit();
    expect(exit.code).toBe(1);
    const messages = client.process.logs().map((l) => l.msg);
    expect(messages).not.toContain('-L listening');
    expect(client.process.stderr.join('\n')).toContain('authentication failed');
  });
});

describe.concurrent('-v: one line per forwarded connection', () => {
  it('connect and serve log when each connection opened and closed, with its bytes each way', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope, logLevel: '', args: ['-v'] });
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`], logLevel: '', args: ['-v'] });
    const payload = 'x'.repeat(1234);
    expect((await exchange(local, payload)).toString()).toBe(payload);

    const opened = await client.process.waitForLog('connection opened');
    expect(opened).toMatchObject({ forward: `-L 127.0.0.1:${local} -> 127.0.0.1:${echo.port}`, target: `127.0.0.1:${echo.port}` });
    const closed = await client.process.waitForLog('connection closed');
    expect(closed).toMatchObject({ bytesUp: 1234, bytesDown: 1234, end: 'fin' });
    expect(typeof closed.durationMs).toBe('number');
    const serverSide = await server.process.waitForLog('connection closed');
    expect(serverSide).toMatchObject({ target: `127.0.0.1:${echo.port}`, end: 'fin' });
  });

  it('a failed dial says so on the line of that connection', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope, logLevel: '', args: ['-v'] });
    const dead = await freePort();
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:${dead}`], logLevel: '', args: ['-v'] });
    const outcome = await converse(local, 'hello?');
    expect(outcome.ended && outcome.error === undefined).toBe(false);
    const closed = await client.process.waitForLog('connection closed');
    expect(String(closed.end)).toMatch(/^reset by the other end of the tunnel/);
    const serverSide = await server.process.waitForLog('connection closed');
    expect(String(serverSide.end)).toMatch(/^dial failed: .*ECONNREFUSED/);
  });
});

describe.concurrent('refusing typos and weak tokens (exit 2)', () => {
  const cases: Array<{ name: string; args: string[]; message: RegExp }> = [
    { name: 'two -L on one port', args: ['connect', '127.0.0.1:4443', '-L', '8080:localhost:80', '-L', '8080:localhost:81'], message: /-L 8080 given twice/ },
    { name: 'two -R on one port', args: ['connect', '127.0.0.1:4443', '-R', '9000:localhost:80', '-R', '9000:localhost:81'], message: /-R 9000 given twice/ },
    { name: 'a token shorter than 16 characters', args: ['serve', '--port', '0', '--token', 'ab'], message: /the token has 2 characters; it needs at least 16/ },
    { name: 'a limit out of range, named by its flag', args: ['serve', '--port', '0', '--max-sessions', '0'], message: /--max-sessions: must be an integer from 1 to 1000000, got 0/ },
    { name: 'a heartbeat out of range, in seconds', args: ['connect', '127.0.0.1:4443', '-L', '8080:localhost:80', '--heartbeat-interval', '0'], message: /--heartbeat-interval: must be from 0\.001 to .* seconds, got 0/ },
  ];
  for (const { name, args, message } of cases) {
    it(name, async (context) => {
      const scope = new Scope(context);
      const { exit, stderr } = await runMuxtun([...args, ...(args[0] === 'serve' ? ['--state-dir', await tempDir('muxtun-e2e-', scope)] : [])], { scope, env: { MUXTUN_TOKEN: 'e2e-token-long-enough' } });
      expect(exit.code, stderr).toBe(2);
      expect(stderr).toMatch(message);
    });
  }
});

describe.concurrent('the serve banner', () => {
  it('shows the fingerprint once and a connect line with the address to use, in the form the README teaches', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    // Once in the banner (and in its connect line); the log carries it only because stdout is not a terminal here.
    expect(server.process.stdout.filter((l) => l.startsWith('fingerprint:'))).toHaveLength(1);
    expect(server.process.logs().filter((l) => l.msg === 'listening')[0]?.fingerprint).toBe(server.fingerprint);
    const line = server.process.stdout.find((l) => l.includes(' connect '));
    expect(line).toContain(`node bin/muxtun.js connect 127.0.0.1:${server.port} --fingerprint ${server.fingerprint}`);
    expect(server.process.stdout.join('\n')).not.toContain('replace localhost');
  });

  it('on 0.0.0.0 it shows this machine\'s host name', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope, args: ['--host', '0.0.0.0'] });
    const line = server.process.stdout.find((l) => l.includes(' connect '));
    expect(line).toContain(` connect ${hostname()}:${server.port} `);
  });
});
