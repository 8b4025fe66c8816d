/**
 * The WebSocket transport and client-side proxies with real processes
 * (issue 13). Without third-party programs: connect ws:// straight to serve
 * --ws-listen, in stream mode (the default) and in --ws-mode messages
 * (-L, -R, resumption across a cut link, what the HTTP side
 * answers to strangers, --no-tls-listen, proxy errors). With them (see
 * test/support/real-programs.ts; skipped with the reason when missing):
 * nginx terminating TLS in front of --ws-listen, tinyproxy as an HTTP
 * CONNECT proxy, Dante as a SOCKS5 proxy.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { caPem, makeLeaf, writePem } from '../support/certs.js';
import { runMuxtun, startConnect, startServe, remotePort, type Serve } from '../support/muxtun.js';
import { closedPort, echoServer, expectEcho, freePort, hashExchange, hashServer, relay, EchoClient } from '../support/net.js';
import { dantedProgram, nginxProgram, skipSuiteWithout, startDanted, startNginx, startTinyproxy, tinyproxyProgram } from '../support/real-programs.js';
import { Scope } from '../support/scope.js';

const MiB = 1024 * 1024;
const TOKEN = 'transport-test-token-0123456789';

/** serve with a WebSocket listener on a free port, beside its TLS port. */
async function serveWs(scope?: Scope, args: string[] = []): Promise<Serve & { wsPort: number }> {
  const serve = await startServe({ token: TOKEN, args: ['--ws-listen', '127.0.0.1:0', ...args], ...(scope ? { scope } : {}) });
  return { ...serve, wsPort: serve.wsPort! };
}

/** An HTTP exchange on a raw socket: what the listener answered, and whether it then closed. */
async function rawHttp(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${Buffer.concat(chunks).toString('latin1')}`));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(request);
  });
}

describe('connect ws:// to serve --ws-listen', () => {
  it('carries -L and -R with their bytes intact both ways', async () => {
    const serve = await serveWs();
    const [hash, echo] = await Promise.all([hashServer(4 * MiB), echoServer()]);
    const local = await freePort();
    const connect = await startConnect(serve, {
      server: `ws://127.0.0.1:${serve.wsPort}/muxtun`,
      local: [`${local}:127.0.0.1:${hash.port}`],
      remote: [`127.0.0.1:0:127.0.0.1:${echo.port}`],
    });
    await hashExchange(local, 4 * MiB);
    await expectEcho(remotePort(connect, `127.0.0.1:${echo.port}`), 256 * 1024);
    // The server logs the HTTP peer for a WebSocket client, as for TCP.
    expect(serve.process.logs().some((entry) => entry.msg === 'client authenticated' && /^127\.0\.0\.1:\d+$/.test(String(entry.client)))).toBe(true);
  });

  it('carries -L in --ws-mode messages too (for proxies that re-frame messages), beside a stream-mode client', async () => {
    const serve = await serveWs();
    const echo = await echoServer();
    const [messages, stream] = [await freePort(), await freePort()];
    await startConnect(serve, { server: `ws://127.0.0.1:${serve.wsPort}/muxtun`, local: [`${messages}:127.0.0.1:${echo.port}`], args: ['--ws-mode', 'messages'] });
    await startConnect(serve, { server: `ws://127.0.0.1:${serve.wsPort}/muxtun`, local: [`${stream}:127.0.0.1:${echo.port}`] });
    await expectEcho(messages, 1024 * 1024);
    await expectEcho(stream, 1024 * 1024);
  });

  it('answers a wrong path, plain HTTP and garbage with a 404 or a close, and the tunnel goes on', async () => {
    const serve = await serveWs();
    const echo = await echoServer();
    const local = await freePort();
    await startConnect(serve, { server: `ws://127.0.0.1:${serve.wsPort}/muxtun`, local: [`${local}:127.0.0.1:${echo.port}`] });
    const client = await EchoClient.connect(local);
    await client.roundTrip(randomBytes(1024));

    const wrongPath = await rawHttp(serve.wsPort, 'GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(wrongPath).toMatch(/^HTTP\/1\.1 404 /);
    const plain = await rawHttp(serve.wsPort, 'GET /muxtun HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(plain).toMatch(/^HTTP\/1\.1 404 /);
    const health = await rawHttp(serve.wsPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(health).toMatch(/^HTTP\/1\.1 200 /);
    const garbage = await rawHttp(serve.wsPort, Buffer.from('\x16\x03\x01\x00\x05hello\r\n\r\n\x00\xff', 'latin1'));
    expect(garbage).not.toMatch(/^HTTP\/1\.1 [23]/);

    await client.roundTrip(randomBytes(1024));
    await expectEcho(local, 4096);
    client.destroy();
    expect(serve.process.child.exitCode).toBeNull();
  });

  it('keeps forwarded connections across a cut link (resumption works over WebSockets)', async () => {
    const scope = new Scope();
    try {
      const serve = await serveWs(scope);
      const path = await relay(serve.wsPort, scope);
      const echo = await echoServer(scope);
      const local = await freePort();
      const connect = await startConnect(serve, {
        scope,
        server: `ws://127.0.0.1:${path.port}/muxtun`,
        local: [`${local}:127.0.0.1:${echo.port}`],
        fastHeartbeat: true,
        args: ['--reconnect-max', '1'],
      });
      const client = await EchoClient.connect(local);
      await client.roundTrip(randomBytes(64 * 1024));
      const after = connect.process.logs().length;
      expect(path.cut('reset')).toBeGreaterThan(0);
      await connect.process.waitForLog(/^link lost /, { after, timeoutMs: 10_000 });
      path.restore();
      await connect.process.waitForLog(/^resumed after /, { after, timeoutMs: 15_000 });
      await client.roundTrip(randomBytes(64 * 1024));
      client.destroy();
    } finally {
      await scope.close();
    }
  });

  it('serves WebSockets alone with --no-tls-listen', async () => {
    const serve = await serveWs(undefined, ['--no-tls-listen']);
    expect(serve.port).toBe(serve.wsPort);
    const echo = await echoServer();
    const local = await freePort();
    await startConnect(serve, { server: `ws://127.0.0.1:${serve.wsPort}/muxtun`, local: [`${local}:127.0.0.1:${echo.port}`] });
    await expectEcho(local, 4096);
  });

  it('says what the HTTP side answered when the path is wrong', async () => {
    const serve = await serveWs();
    const { exit, stderr } = await runMuxtun(
      ['connect', `ws://127.0.0.1:${serve.wsPort}/wrong`, '--fingerprint', serve.fingerprint, '-L', '0:127.0.0.1:9', '--no-reconnect'],
      { env: { MUXTUN_TOKEN: TOKEN }, timeoutMs: 15_000 },
    );
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_MUXTUN_WEBSOCKET');
    expect(stderr).toContain('HTTP 404');
  });
});

describe('connect --ws-mode', () => {
  it('takes stream or messages (shown by --check, stream by default), and refuses anything else as a usage error', async () => {
    const base = ['connect', 'ws://127.0.0.1:1/muxtun', '--insecure', '-L', '0:127.0.0.1:9', '--no-config'];
    const env = { MUXTUN_TOKEN: TOKEN };
    const byDefault = await runMuxtun([...base, '--check'], { env });
    expect(byDefault.exit.code, byDefault.stderr).toBe(0);
    expect(byDefault.stdout).toMatch(/^ws-mode = "stream" +# default$/m);
    const messages = await runMuxtun([...base, '--check', '--ws-mode', 'messages'], { env });
    expect(messages.stdout).toMatch(/^ws-mode = "messages" +# flag/m);
    const wrong = await runMuxtun([...base, '--ws-mode', 'frames'], { env });
    expect(wrong.exit.code).toBe(2);
    expect(wrong.stderr).toContain('--ws-mode');
    expect(wrong.stderr).toContain('stream, messages');
  });
});

describe('connect --proxy errors', () => {
  it('names an unreachable proxy and never shows its credentials', async () => {
    const serve = await startServe({ token: TOKEN });
    const port = await closedPort();
    for (const scheme of ['http', 'socks5']) {
      const { exit, stderr } = await runMuxtun(
        ['connect', serve.address, '--fingerprint', serve.fingerprint, '-L', '0:127.0.0.1:9', '--no-reconnect', '--proxy', `${scheme}://alice:s3cr3t-pw@127.0.0.1:${port}`],
        { env: { MUXTUN_TOKEN: TOKEN }, timeoutMs: 15_000 },
      );
      expect(exit.code, stderr).toBe(1);
      expect(stderr).toContain('ERR_MUXTUN_PROXY_UNREACHABLE');
      expect(stderr).toContain(`${scheme}://127.0.0.1:${port}`);
      expect(stderr).not.toContain('s3cr3t-pw');
      expect(stderr).not.toContain('alice');
    }
  });

  it('refuses a proxy URL it cannot use, as a usage error without the password', async () => {
    const { exit, stderr } = await runMuxtun(['connect', '127.0.0.1:1', '-L', '0:127.0.0.1:9', '--proxy', 'ftp://bob:hunter22@proxy:21'], { env: { MUXTUN_TOKEN: TOKEN } });
    expect(exit.code).toBe(2);
    expect(stderr).toContain('ftp://');
    expect(stderr).not.toContain('hunter22');
  });
});

describe.skipIf(skipSuiteWithout('nginx in front of --ws-listen', nginxProgram))('behind nginx terminating TLS (wss://)', () => {
  async function behindNginx(readTimeoutS?: number): Promise<{ serve: Serve & { wsPort: number }; url: string; env: NodeJS.ProcessEnv }> {
    const ca = await caPem('muxtun nginx test CA');
    const leaf = await writePem(await makeLeaf({ names: ['localhost', '127.0.0.1'], ca }), ca);
    const serve = await serveWs();
    const nginx = await startNginx({ wsPort: serve.wsPort, cert: leaf.cert, key: leaf.key, ...(readTimeoutS !== undefined ? { readTimeoutS } : {}) });
    return { serve, url: `wss://localhost:${nginx.port}/muxtun`, env: { NODE_EXTRA_CA_CERTS: leaf.ca! } };
  }

  it('carries -L and -R, 16 MiB each way with hash checks', async () => {
    const { serve, url, env } = await behindNginx();
    const [hashL, hashR] = await Promise.all([hashServer(16 * MiB), hashServer(16 * MiB)]);
    const local = await freePort();
    const connect = await startConnect(serve, { server: url, env, local: [`${local}:127.0.0.1:${hashL.port}`], remote: [`127.0.0.1:0:127.0.0.1:${hashR.port}`] });
    await hashExchange(local, 16 * MiB, 60_000);
    await hashExchange(remotePort(connect, `127.0.0.1:${hashR.port}`), 16 * MiB, 60_000);
  }, 120_000);

  it('refuses the outer certificate without the CA (NODE_EXTRA_CA_CERTS), like any HTTPS client', async () => {
    const { serve, url } = await behindNginx();
    const { exit, stderr } = await runMuxtun(['connect', url, '--fingerprint', serve.fingerprint, '-L', '0:127.0.0.1:9', '--no-reconnect'], { env: { MUXTUN_TOKEN: TOKEN }, timeoutMs: 15_000 });
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_MUXTUN_TLS_UNTRUSTED');
    expect(stderr).toContain('NODE_EXTRA_CA_CERTS');
  });

  it('keeps an idle tunnel past nginx proxy_read_timeout (the heartbeat keeps it busy)', async () => {
    // Scaled down from nginx's 60 s and muxtun's 3 s heartbeat, as a user
    // would set them: a heartbeat well inside the proxy's timeout.
    const { serve, url, env } = await behindNginx(2);
    const echo = await echoServer();
    const local = await freePort();
    const connect = await startConnect(serve, { server: url, env, local: [`${local}:127.0.0.1:${echo.port}`], args: ['--heartbeat-interval', '0.5'] });
    const client = await EchoClient.connect(local);
    await client.roundTrip(randomBytes(1024));
    // This test is about time: 8 s of silence from the application, four nginx timeouts.
    await sleep(8_000);
    await client.roundTrip(randomBytes(1024));
    client.destroy();
    expect(connect.process.logs().filter((entry) => entry.msg === 'connected' || /^link lost /.test(String(entry.msg)))).toHaveLength(1);
  }, 60_000);
});

describe.skipIf(skipSuiteWithout('tinyproxy as an HTTP CONNECT proxy', tinyproxyProgram))('through tinyproxy (HTTP CONNECT)', () => {
  it('reaches a raw TLS server through the proxy', async () => {
    const serve = await startServe({ token: TOKEN });
    const proxy = await startTinyproxy({ connectPort: serve.port });
    const echo = await echoServer();
    const local = await freePort();
    await startConnect(serve, { local: [`${local}:127.0.0.1:${echo.port}`], args: ['--proxy', `http://127.0.0.1:${proxy.port}`] });
    await expectEcho(local, 256 * 1024);
  });

  it('authenticates with Basic credentials; a wrong password gives the 407 message, not the password', async () => {
    const serve = await startServe({ token: TOKEN });
    const proxy = await startTinyproxy({ connectPort: serve.port, auth: { user: 'muxuser', password: 'rightpass' } });
    const echo = await echoServer();
    const local = await freePort();
    await startConnect(serve, { local: [`${local}:127.0.0.1:${echo.port}`], env: { MUXTUN_PROXY: `http://muxuser:rightpass@127.0.0.1:${proxy.port}` } });
    await expectEcho(local, 4096);

    const { exit, stderr } = await runMuxtun(
      ['connect', serve.address, '--fingerprint', serve.fingerprint, '-L', '0:127.0.0.1:9', '--proxy', `http://muxuser:wrongpass@127.0.0.1:${proxy.port}`],
      { env: { MUXTUN_TOKEN: TOKEN }, timeoutMs: 15_000 },
    );
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_MUXTUN_PROXY_AUTH');
    // tinyproxy answers 401 where RFC 9110 says 407; the message shows its status line either way.
    expect(stderr).toMatch(/requires authentication \("HTTP\/1\.[01] 40[17] /);
    expect(stderr).not.toContain('wrongpass');
  });

  it('shows the status line when CONNECT is refused (a port the proxy does not allow)', async () => {
    const serve = await startServe({ token: TOKEN });
    const proxy = await startTinyproxy({ connectPort: 1 });
    const { exit, stderr } = await runMuxtun(
      ['connect', serve.address, '--fingerprint', serve.fingerprint, '-L', '0:127.0.0.1:9', '--no-reconnect', '--proxy', `http://127.0.0.1:${proxy.port}`],
      { env: { MUXTUN_TOKEN: TOKEN }, timeoutMs: 15_000 },
    );
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_MUXTUN_PROXY_REFUSED');
    expect(stderr).toMatch(/"HTTP\/1\.[01] 403/);
  });

  it('carries ws:// through HTTP_PROXY, and NO_PROXY skips it', async () => {
    const serve = await serveWs();
    const proxy = await startTinyproxy({ connectPort: serve.wsPort });
    const echo = await echoServer();
    const local = await freePort();
    const url = `ws://127.0.0.1:${serve.wsPort}/muxtun`;
    await startConnect(serve, { server: url, local: [`${local}:127.0.0.1:${echo.port}`], env: { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` } });
    await expectEcho(local, 4096);
    // The request line, not just a connection (tinyproxy tags every connection CONNECT in its log).
    expect(proxy.process.stdout.concat(proxy.process.stderr).join('\n')).toContain(`CONNECT 127.0.0.1:${serve.wsPort}`);
    // A proxy that does not exist is skipped for 127.0.0.1 by NO_PROXY.
    const local2 = await freePort();
    await startConnect(serve, { server: url, local: [`${local2}:127.0.0.1:${echo.port}`], env: { HTTP_PROXY: `http://127.0.0.1:${await closedPort()}`, NO_PROXY: 'localhost,127.0.0.1' } });
    await expectEcho(local2, 4096);
  });
});

describe.skipIf(skipSuiteWithout('Dante as a SOCKS5 proxy', dantedProgram))('through Dante (SOCKS5)', () => {
  it('reaches a raw TLS server with socks5:// and socks5h://, and a ws:// server too', async () => {
    const serve = await serveWs();
    const proxy = await startDanted();
    const echo = await echoServer();
    for (const [scheme, server] of [['socks5', serve.address], ['socks5h', `localhost:${serve.port}`], ['socks5', `ws://127.0.0.1:${serve.wsPort}/muxtun`]] as const) {
      const local = await freePort();
      await startConnect(serve, { server, local: [`${local}:127.0.0.1:${echo.port}`], args: ['--proxy', `${scheme}://127.0.0.1:${proxy.port}`] });
      await expectEcho(local, 64 * 1024);
    }
  });

  it('puts the SOCKS reply code in words', async () => {
    const proxy = await startDanted();
    const port = await closedPort();
    const { exit, stderr } = await runMuxtun(
      ['connect', `127.0.0.1:${port}`, '--insecure', '-L', '0:127.0.0.1:9', '--no-reconnect', '--proxy', `socks5://127.0.0.1:${proxy.port}`],
      { env: { MUXTUN_TOKEN: TOKEN }, timeoutMs: 15_000 },
    );
    expect(exit.code).toBe(1);
    expect(stderr).toContain('ERR_MUXTUN_PROXY_SOCKS');
    expect(stderr).toContain('connection refused by the target');
  });
});

describe.skipIf(skipSuiteWithout('wss:// through an HTTP proxy', nginxProgram, tinyproxyProgram))('wss:// through HTTPS_PROXY (tinyproxy, then nginx)', () => {
  it('tunnels the outer TLS through CONNECT and checks it end to end; --proxy direct ignores the variable', async () => {
    const ca = await caPem('muxtun proxy test CA');
    const leaf = await writePem(await makeLeaf({ names: ['localhost', '127.0.0.1'], ca }), ca);
    const serve = await serveWs();
    const nginx = await startNginx({ wsPort: serve.wsPort, cert: leaf.cert, key: leaf.key });
    const proxy = await startTinyproxy({ connectPort: nginx.port });
    const echo = await echoServer();
    const local = await freePort();
    const url = `wss://localhost:${nginx.port}/muxtun`;
    await startConnect(serve, { server: url, env: { NODE_EXTRA_CA_CERTS: leaf.ca!, HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` }, local: [`${local}:127.0.0.1:${echo.port}`] });
    await expectEcho(local, 256 * 1024);
    expect(proxy.process.stdout.concat(proxy.process.stderr).join('\n')).toContain(`localhost:${nginx.port}`);

    // --proxy direct: the variable (naming a dead proxy) is ignored.
    const local2 = await freePort();
    await startConnect(serve, {
      server: url,
      env: { NODE_EXTRA_CA_CERTS: leaf.ca!, HTTPS_PROXY: `http://127.0.0.1:${await closedPort()}` },
      local: [`${local2}:127.0.0.1:${echo.port}`],
      args: ['--proxy', 'direct'],
    });
    await expectEcho(local2, 4096);
  }, 60_000);
});
