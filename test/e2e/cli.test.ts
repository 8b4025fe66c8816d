/**
 * The command line as a user meets it through the real binary: help into a
 * broken pipe, and the runtime failures that end `connect` or `serve` before
 * any tunnel exists (exit 1). Help, version and bad arguments (exit 2) run
 * in-process in test/cli/usage.test.ts.
 */
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
  // Help, version and every bad-argument case run in-process in
  // test/cli/usage.test.ts; this one needs a real process with a real pipe.
  it('help piped into a reader that leaves early (`muxtun connect --help | head -1`) exits 0 without a stack trace', async () => {
    for (const args of [['connect', '--help'], ['serve', '--help'], []]) {
      const child = spawnMuxtun(args, { name: `muxtun ${args.join(' ')}` });
      // Gone before muxtun writes: every write to stdout fails with EPIPE.
      child.child.stdout!.destroy();
      const exit = await child.waitForExit();
      expect(child.stderr.join('\n'), child.tail()).not.toMatch(/EPIPE|at .*\(node:/);
      // No command at all is a usage error (exit 2); help asked for is not.
      expect(exit.code, child.tail()).toBe(args.length === 0 ? 2 : 0);
    }
  });
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

  it('an unreachable server (nothing listens), with --no-reconnect', async () => {
    const port = await closedPort();
    const args = connectArgs({ port, fingerprint: FAKE_FINGERPRINT }, { local: [`${await freePort()}:localhost:80`], args: ['--no-reconnect'] });
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
  // --no-reconnect: a timeout is worth retrying by default; these tests want the first failure.
  const args = connectArgs({ port, fingerprint: '' }, { local: [`${await freePort()}:localhost:80`], trust: 'insecure', args: ['--no-reconnect'] });
  return runMuxtun(args, { ...withToken, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

/** A server of another kind (http, https, tls) on 127.0.0.1:0, as a TestServer. */
function wrap(server: net.Server, scope: Scope): Promise<TestServer> {
  server.on('secureConnection', (socket: tls.TLSSocket) => socket.on('error', () => {}));
  server.on('tlsClientError', () => {});
  return serveOnLoopback(server, undefined, scope);
}
