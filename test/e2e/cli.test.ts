/**
 * The command line as a user meets it: help, version, every kind of bad
 * argument (exit 2, a message naming the bad part), and the runtime
 * failures that end `connect` before any tunnel exists (exit 1).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { makeLeaf, type Pem } from '../support/certs.js';
import { connectArgs, runMuxtun, spawnMuxtun } from '../support/muxtun.js';
import { closedPort, freePort, listen, serveOnLoopback, type TestServer } from '../support/net.js';
import { repoRoot } from '../support/process.js';
import { tempDir } from '../support/fs.js';
import { Scope } from '../support/scope.js';

const FAKE_FINGERPRINT = `sha256:${'ab'.repeat(32)}`;
const withToken = { env: { MUXTUN_TOKEN: 'e2e-token' } };

describe.concurrent('muxtun without a command', () => {
  it('prints help and exits 0', async () => {
    const { exit, stdout } = await runMuxtun([]);
    expect(exit.code).toBe(0);
    expect(stdout).toContain('Usage: muxtun');
    expect(stdout).toContain('serve');
    expect(stdout).toContain('connect');
  });

  it('--version prints the version in package.json', async () => {
    const { version } = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string };
    const { exit, stdout } = await runMuxtun(['--version']);
    expect(exit.code).toBe(0);
    expect(stdout.trim()).toBe(version);
  });

  it('help piped into a reader that leaves early (`muxtun connect --help | head -1`) exits 0 without a stack trace', async () => {
    for (const args of [['connect', '--help'], ['serve', '--help'], []]) {
      const child = spawnMuxtun(args, { name: `muxtun ${args.join(' ')}` });
      // Gone before muxtun writes: every write to stdout fails with EPIPE.
      child.child.stdout!.destroy();
      const exit = await child.waitForExit();
      expect(child.stderr.join('\n'), child.tail()).not.toMatch(/EPIPE|at .*\(node:/);
      expect(exit.code, child.tail()).toBe(0);
    }
  });

  it('serve --help and connect --help describe the options and exit 0', async () => {
    const serve = await runMuxtun(['serve', '--help']);
    expect(serve.exit.code).toBe(0);
    expect(serve.stdout).toContain('--allow-remote');
    const connect = await runMuxtun(['connect', '--help']);
    expect(connect.exit.code).toBe(0);
    expect(connect.stdout).toContain('-L, --local');
  });
});

describe.concurrent('bad arguments: exit 2 and a message naming the problem', () => {
  const server = '127.0.0.1:4443';
  const cases: Array<{ name: string; args: string[]; env?: NodeJS.ProcessEnv; message: RegExp }> = [
    { name: '-L with only a port', args: ['connect', server, '-L', '80'], message: /-L 80: expected \[bind:\]port:host:hostport/ },
    { name: '-R with words for ports', args: ['connect', server, '-R', 'x:y:z'], message: /-R x:y:z: listening port: "x" is not a port number/ },
    { name: 'a -L port above 65535', args: ['connect', server, '-L', '70000:localhost:80'], message: /-L 70000:localhost:80: listening port: port 70000 is out of range/ },
    { name: 'a -R target port above 65535', args: ['connect', server, '-R', '9000:localhost:70000'], message: /target port: port 70000 is out of range/ },
    { name: 'a server port above 65535', args: ['connect', '127.0.0.1:70000', '-L', '8080:localhost:80'], message: /server address: port 70000 is out of range/ },
    { name: 'serve --port above 65535', args: ['serve', '--port', '70000'], message: /--port: port 70000 is out of range/ },
    { name: 'no server', args: ['connect', '-L', '8080:localhost:80'], message: /give the server as HOST:PORT or set MUXTUN_SERVER/ },
    { name: 'no token', args: ['connect', server, '-L', '8080:localhost:80'], env: {}, message: /no token: set MUXTUN_TOKEN/ },
    { name: 'no forwards', args: ['connect', server], message: /nothing to forward/ },
    { name: '--fingerprint garbage', args: ['connect', server, '-L', '8080:localhost:80', '--fingerprint', 'garbage'], message: /--fingerprint: Invalid certificate fingerprint "garbage"/ },
    { name: '--cert without --key', args: ['serve', '--cert', '/nonexistent/cert.pem'], message: /--cert and --key go together/ },
    { name: 'an unknown option of connect', args: ['connect', server, '--frobnicate'], message: /unknown option '--frobnicate'/ },
    { name: 'an unknown option of serve', args: ['serve', '--frobnicate'], message: /unknown option '--frobnicate'/ },
    { name: 'an unknown command', args: ['frobnicate'], message: /unknown command 'frobnicate'/ },
    { name: 'two ways of trust at once', args: ['connect', server, '-L', '8080:localhost:80', '--insecure', '--fingerprint', FAKE_FINGERPRINT], message: /choose one way to trust the server/ },
  ];
  for (const { name, args, env, message } of cases) {
    it(name, async () => {
      const { exit, stdout, stderr } = await runMuxtun(args, env ? { env } : withToken);
      expect(exit.code, stderr).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).toContain('--help');
      expect(stdout).toBe('');
    });
  }
});

describe.concurrent('connect fails before a tunnel exists: exit 1 and a clear message', () => {
  it('a -L port already in use: the message names the port', async (context) => {
    const scope = new Scope(context);
    const busy = await listen(() => {}, scope);
    const args = connectArgs({ port: await closedPort(), fingerprint: FAKE_FINGERPRINT }, { local: [`${busy.port}:localhost:80`] });
    const { exit, stderr } = await runMuxtun(args, withToken);
    expect(exit.code, stderr).toBe(1);
    expect(stderr).toContain(`cannot listen for -L 127.0.0.1:${busy.port}`);
    expect(stderr).toMatch(/already in use/);
  });

  it('serve on a port in use: the message names the port', async (context) => {
    const scope = new Scope(context);
    const busy = await listen(() => {}, scope);
    const stateDir = await tempDir('muxtun-e2e-', scope);
    const { exit, stderr } = await runMuxtun(['serve', '--host', '127.0.0.1', '--port', String(busy.port), '--state-dir', stateDir]);
    expect(exit.code, stderr).toBe(1);
    expect(stderr).toContain(`cannot listen on 127.0.0.1:${busy.port}`);
    expect(stderr).toMatch(/already in use/);
  });

  it('an unreachable server (nothing listens)', async () => {
    const port = await closedPort();
    const args = connectArgs({ port, fingerprint: FAKE_FINGERPRINT }, { local: [`${await freePort()}:localhost:80`] });
    const { exit, stderr } = await runMuxtun(args, withToken);
    expect(exit.code, stderr).toBe(1);
    expect(stderr).toMatch(new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`));
    expect(stderr).toContain('ERR_MUXTUN_CONNECT');
  });

  const plain: Array<[string, (scope: Scope) => Promise<TestServer>]> = [
    ['a TCP server that greets first (ssh-like)', (scope) => listen((socket) => socket.write('SSH-2.0-OpenSSH_9.6\r\n'), scope)],
    ['an HTTP server', (scope) => wrap(http.createServer((_, response) => response.end('hello')), scope)],
  ];
  for (const [name, start] of plain) {
    it(`not muxtun: ${name}`, async (context) => {
      const scope = new Scope(context);
      const server = await start(scope);
      const { exit, stderr } = await connectTo(server.port);
      expect(exit.code, stderr).toBe(1);
      expect(stderr).toMatch(/did not answer with TLS/);
      expect(stderr).toMatch(/a muxtun server/);
      expect(stderr).toContain('ERR_MUXTUN_TLS_HANDSHAKE');
    });
  }

  it('not muxtun: a TCP server that says nothing (the TLS handshake times out)', { timeout: 30_000 }, async (context) => {
    const scope = new Scope(context);
    const server = await listen(() => {}, scope);
    const { exit, stderr } = await connectTo(server.port, 20_000);
    expect(exit.code, stderr).toBe(1);
    expect(stderr).toMatch(/Timed out after \d+ ms waiting for the TLS handshake/);
    expect(stderr).toMatch(/a muxtun server/);
  });

  const tlsServers: Array<[string, (pem: Pem, scope: Scope) => Promise<TestServer>, RegExp]> = [
    ['a TLS echo server', (pem, scope) => wrap(tls.createServer(pem, (socket) => socket.pipe(socket)), scope), /answered with something that is not the muxtun protocol/],
    ['an HTTPS server', (pem, scope) => wrap(https.createServer(pem, (_, response) => response.end('hello')), scope), /answered with something that is not the muxtun protocol/],
    ['a TLS server that hangs up after the handshake', (pem, scope) => wrap(tls.createServer(pem, (socket) => socket.end()), scope), /closed the connection during the handshake/],
  ];
  for (const [name, start, why] of tlsServers) {
    it(`not muxtun: ${name}`, async (context) => {
      const scope = new Scope(context);
      const server = await start(await makeLeaf(), scope);
      const { exit, stderr } = await connectTo(server.port);
      expect(exit.code, stderr).toBe(1);
      expect(stderr).toMatch(why);
      expect(stderr).toMatch(/is it a muxtun server\?/);
      expect(stderr).toContain('ERR_MUXTUN_HANDSHAKE');
    });
  }
});

/** `connect --insecure` (any certificate) to 127.0.0.1:port, to completion. */
async function connectTo(port: number, timeoutMs?: number): ReturnType<typeof runMuxtun> {
  const args = connectArgs({ port, fingerprint: '' }, { local: [`${await freePort()}:localhost:80`], trust: 'insecure' });
  return runMuxtun(args, { ...withToken, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

/** A server of another kind (http, https, tls) on 127.0.0.1:0, as a TestServer. */
function wrap(server: net.Server, scope: Scope): Promise<TestServer> {
  server.on('secureConnection', (socket: tls.TLSSocket) => socket.on('error', () => {}));
  server.on('tlsClientError', () => {});
  return serveOnLoopback(server, undefined, scope);
}
