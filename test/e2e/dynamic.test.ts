/**
 * -D (SOCKS here, the server dials), reverse dynamic -R (SOCKS on the
 * server, this side dials, within --allow-target) and -W (stdio as one
 * connection), end to end with real processes and the `socks` client
 * package, on resumable sessions and with --no-resume.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { connectArgs, runMuxtun, spawnMuxtun, startConnect, startServe, type Connect, type ConnectOptions } from '../support/muxtun.js';
import { closedPort, connectionEnd, echoServer, freePort, hashServer, relay, sha256, type Relay } from '../support/net.js';
import { Scope, track } from '../support/scope.js';
import { socksConnect, socksRefusal } from '../support/socks.js';
import { waitUntil, within } from '../support/wait.js';

async function roundTrip(socket: net.Socket, text: string): Promise<string> {
  const got: Buffer[] = [];
  let length = 0;
  return within(
    new Promise<string>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        got.push(chunk);
        length += chunk.length;
        if (length >= Buffer.byteLength(text)) resolve(Buffer.concat(got).toString());
      });
      socket.once('error', reject);
      socket.write(text);
    }),
    5_000,
    'an echo through SOCKS',
  );
}

describe.concurrent.each([[''], ['--no-resume']])('connect -D %s', (mode) => {
  const args = mode ? [mode] : [];

  it('SOCKS5 (IPv4 and domain name) and SOCKS4/4a reach an echo server the server dials', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const socksPort = await freePort();
    await startConnect(server, { scope, dynamic: [String(socksPort)], args });
    for (const [version, host] of [[5, '127.0.0.1'], [5, 'localhost'], [4, '127.0.0.1'], [4, 'localhost']] as const) {
      const socket = await socksConnect(socksPort, host, echo.port, { version, scope });
      expect(await roundTrip(socket, `hello v${version} ${host}`)).toBe(`hello v${version} ${host}`);
      socket.end();
    }
  });

  it('the SOCKS reply tells the truth: 0x02 for the server\'s policy, 0x05 for a closed port', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope, args: ['--allow-local', '127.0.0.1:*'] });
    const socksPort = await freePort();
    const client = await startConnect(server, { scope, dynamic: [String(socksPort)], args });
    expect(await socksRefusal(socksPort, 'localhost', 80)).toMatch(/NotAllowed/);
    expect(await socksRefusal(socksPort, '127.0.0.1', await closedPort())).toMatch(/ConnectionRefused/);
    expect(await socksRefusal(socksPort, '127.0.0.1', await closedPort(), 4)).toMatch(/Socks4 Proxy rejected connection/);
    // The tunnel is fine afterwards: the refusals ended only their own connections.
    expect(client.process.alive).toBe(true);
  });
});

describe.concurrent('connect -D: what is not a CONNECT', () => {
  it('BIND and UDP ASSOCIATE get 0x07, a client that says nothing is closed after the handshake timeout, and garbage ends only its own connection', { timeout: 30_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const socksPort = await freePort();
    const client = await startConnect(server, { scope, dynamic: [String(socksPort)] });
    const open = await socksConnect(socksPort, '127.0.0.1', echo.port, { scope });
    expect(await roundTrip(open, 'before')).toBe('before');

    for (const command of [2, 3]) {
      const raw = track(net.connect({ host: '127.0.0.1', port: socksPort }), scope);
      const got: Buffer[] = [];
      raw.on('data', (chunk: Buffer) => got.push(chunk));
      raw.write(Buffer.from([5, 1, 0, 5, command, 0, 1, 127, 0, 0, 1, 0, 80]));
      expect(await connectionEnd(raw, 5_000)).toBe('end');
      // Method "no authentication", then reply 0x07 (command not supported).
      expect(Buffer.concat(got).subarray(0, 4)).toEqual(Buffer.from([5, 0, 5, 7]));
    }
    const silent = track(net.connect({ host: '127.0.0.1', port: socksPort }), scope);
    const silentEnd = connectionEnd(silent, 8_000);

    // Fuzzed requests: each is one connection that must be answered or closed, never hang the listener.
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(4, 5), fc.uint8Array({ maxLength: 1500 }), async (version, bytes) => {
        const socket = track(net.connect({ host: '127.0.0.1', port: socksPort }), scope);
        socket.on('error', () => {});
        socket.write(Buffer.from([version, ...bytes]));
        socket.end();
        expect(await connectionEnd(socket, 7_000)).not.toBe('timeout');
      }),
      { numRuns: 40 },
    );
    expect(await silentEnd).not.toBe('timeout');
    // Everything else is unaffected: the open connection, a new one, the process.
    expect(await roundTrip(open, 'after')).toBe('after');
    const fresh = await socksConnect(socksPort, 'localhost', echo.port, { scope });
    expect(await roundTrip(fresh, 'fresh')).toBe('fresh');
    expect(client.process.alive).toBe(true);
    expect(client.process.logs().some((entry) => entry.msg === 'closed a SOCKS connection' && typeof entry.socksRefused === 'number')).toBe(true);
  });
});

describe.concurrent.each([[''], ['--no-resume']])('connect -R [bind:]port (reverse dynamic) %s', (mode) => {
  it('a SOCKS client at the server\'s port reaches what only this side can reach; --allow-target refuses the rest', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const other = await echoServer(scope);
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, remote: ['127.0.0.1:0'], args: ['--allow-target', `localhost:${echo.port}`, '--allow-target', `127.0.0.1:${echo.port}`, ...(mode ? [mode] : [])] });
    const port = client.remotePorts[0]!;
    const socket = await socksConnect(port, 'localhost', echo.port, { scope });
    expect(await roundTrip(socket, 'reverse')).toBe('reverse');
    expect(await socksRefusal(port, '127.0.0.1', other.port)).toMatch(/NotAllowed/);
    expect(client.process.stderr.join('\n')).not.toMatch(/without --allow-target/);
  });
});

describe.concurrent('connect -R without --allow-target', () => {
  it('warns at start that anything this side reaches is reachable', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, remote: ['127.0.0.1:0'] });
    expect(client.process.logs().some((entry) => /reverse dynamic -R without --allow-target/.test(String(entry.msg)))).toBe(true);
  });
});

describe.concurrent.each([[''], ['--no-resume']])('connect -W %s', (mode) => {
  it('stdin and stdout are one connection: bytes both ways, EOF half-closes, exit 0 when both ended, nothing else on stdout', async (context) => {
    const scope = new Scope(context);
    const size = 2 * 1024 * 1024;
    const hashes = await hashServer(size, scope);
    const server = await startServe({ scope });
    const child = spawnMuxtun([...connectArgs(server, { args: ['-W', `127.0.0.1:${hashes.port}`, ...(mode ? [mode] : [])] })], { scope, stdin: 'pipe', env: { MUXTUN_TOKEN: server.token }, name: 'connect -W' });
    const out: Buffer[] = [];
    child.child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    const data = randomBytes(size);
    child.child.stdin!.end(data);
    const exit = await child.waitForExit(20_000);
    expect(exit.code, child.tail()).toBe(0);
    // hashServer sends sha256(D), D, and after our FIN the sha256 of what it read: only those bytes, exactly.
    const all = Buffer.concat(out);
    expect(all.length).toBe(32 + size + 32);
    expect(sha256(all.subarray(32, 32 + size))).toBe(all.subarray(0, 32).toString('hex'));
    expect(all.subarray(32 + size).toString('hex')).toBe(sha256(data));
  });
});

describe.concurrent('connect -W refusals', () => {
  it('a failed dial exits 1 with a one-line reason; -W with -L is a usage error', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    const port = await closedPort();
    const { exit, stdout, stderr } = await runMuxtun(connectArgs(server, { args: ['-W', `127.0.0.1:${port}`] }), { scope, env: { MUXTUN_TOKEN: server.token }, timeoutMs: 15_000 });
    expect(exit.code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`muxtun: dialling 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED.* \\[ERR_MUXTUN_DIAL\\]`));
    const usage = await runMuxtun(connectArgs(server, { local: ['0:127.0.0.1:1'], args: ['-W', '127.0.0.1:1'] }), { scope, env: { MUXTUN_TOKEN: server.token } });
    expect(usage.exit.code).toBe(2);
    expect(usage.stderr).toContain('-W combines with neither -L, -R nor -D');
  });
});

describe.concurrent('dynamic forwards across a dropped link (session resumption)', () => {
  /** serve, a relay the test cuts, and connect through it with the fast heartbeat, retrying every second. */
  async function rig(scope: Scope, extra: ConnectOptions): Promise<{ path: Relay; connect: Connect }> {
    const serve = await startServe({ scope });
    const path = await relay(serve.port, scope);
    const connect = await startConnect(serve, { scope, port: path.port, fastHeartbeat: true, ...extra, args: ['--reconnect-max', '1', ...(extra.args ?? [])] });
    return { path, connect };
  }

  it('a -D connection and a reverse dynamic one carry on after the link is cut and back', { timeout: 40_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const socksPort = await freePort();
    const { path, connect } = await rig(scope, { dynamic: [String(socksPort)], remote: ['127.0.0.1:0'], args: ['--allow-target', `127.0.0.1:${echo.port}`] });
    const forward = await socksConnect(socksPort, '127.0.0.1', echo.port, { scope });
    const reverse = await socksConnect(connect.remotePorts[0]!, '127.0.0.1', echo.port, { scope });
    expect(await roundTrip(forward, 'before -D')).toBe('before -D');
    expect(await roundTrip(reverse, 'before -R')).toBe('before -R');
    const after = connect.process.logs().length;
    expect(path.cut()).toBeGreaterThan(0);
    path.restore();
    await connect.process.waitForLog(/^resumed after /, { after, timeoutMs: 20_000 });
    expect(await roundTrip(forward, 'after -D')).toBe('after -D');
    expect(await roundTrip(reverse, 'after -R')).toBe('after -R');
  });

  it('-W: stdin/stdout survive a cut link', { timeout: 40_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const serve = await startServe({ scope });
    const path = await relay(serve.port, scope);
    const child = spawnMuxtun(connectArgs(serve, { port: path.port, fastHeartbeat: true, args: ['--reconnect-max', '1', '--log-level', 'info', '-W', `127.0.0.1:${echo.port}`] }), {
      scope,
      stdin: 'pipe',
      env: { MUXTUN_TOKEN: serve.token },
      name: 'connect -W',
    });
    let out = '';
    child.child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.child.stdin!.write('one;');
    await waitUntil('the first echo on stdout', () => out === 'one;', 10_000);
    const after = child.logs().length;
    expect(path.cut()).toBeGreaterThan(0);
    path.restore();
    await child.waitForLog(/^resumed after /, { after, timeoutMs: 20_000 });
    child.child.stdin!.end('two;');
    expect((await child.waitForExit(10_000)).code, child.tail()).toBe(0);
    expect(out).toBe('one;two;');
  });
});
