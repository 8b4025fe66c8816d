/**
 * TLS failures against the real CLI: something other than a muxtun client at
 * the server, something other than the expected server at the client. Each
 * one is a clear error on the side that can act on it, never a crash or a hang.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { caPem, makeLeaf, writeCa, writePem } from '../support/certs.js';
import { spawnMuxtun, startConnect, startServe } from '../support/muxtun.js';
import { connectionEnd, echoServer, expectEcho, freePort } from '../support/net.js';
import { tempDir } from '../support/fs.js';
import { track } from '../support/scope.js';
import { within } from '../support/wait.js';

/** `muxtun connect` that is expected to fail: its exit code and stderr. */
async function failingConnect(args: string[], token = 'whatever'): Promise<{ code: number | null; stderr: string }> {
  const proc = spawnMuxtun(['connect', ...args, '-L', `${await freePort()}:127.0.0.1:9`, '--no-reconnect', '--log-format', 'json'], { env: { MUXTUN_TOKEN: token } });
  const exit = await proc.waitForExit(15_000);
  return { code: exit.code, stderr: proc.stderr.join('\n') };
}

describe('not a muxtun client at the server', () => {
  it('plaintext to the TLS port: the connection is closed at once, the server logs it and goes on', async () => {
    const echo = await echoServer();
    const serve = await startServe();
    const socket = track(net.connect(serve.port, '127.0.0.1'));
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    expect(await connectionEnd(socket, 3_000)).not.toBe('timeout');
    const log = await serve.process.waitForLog('TLS handshake failed');
    expect(String(log.error)).toMatch(/http request/i);

    const lPort = await freePort();
    await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true });
    await expectEcho(lPort);
  });

  it('a TLS 1.2-only client: the handshake is refused on both sides', async () => {
    const serve = await startServe();
    const socket = tls.connect({ host: '127.0.0.1', port: serve.port, maxVersion: 'TLSv1.2', rejectUnauthorized: false });
    track(socket);
    const [error] = (await within(once(socket, 'error'), 5_000, 'the TLS 1.2 handshake to fail')) as [NodeJS.ErrnoException];
    expect(error.code).toMatch(/ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION|ERR_SSL_UNSUPPORTED_PROTOCOL/);
    const log = await serve.process.waitForLog('TLS handshake failed');
    expect(String(log.error)).toMatch(/unsupported protocol|protocol version/i);
    expect(serve.process.alive).toBe(true);
  });
});

describe('not the expected server at the client', () => {
  it('connect to a port that does not speak TLS: a clear error, exit 1', async () => {
    const http = track(
      net.createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
      }),
    );
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as net.AddressInfo).port;
    const result = await failingConnect([`127.0.0.1:${port}`, '--insecure']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed: the server did not answer with TLS .*Is 127\.0\.0\.1:\d+ a muxtun server/);
    expect(result.stderr).toMatch(/\[ERR_MUXTUN_TLS_HANDSHAKE\]/);
  });

  it('--ca with the wrong CA, and with a server name the certificate does not list: clear errors, exit 1', async () => {
    const ca = await caPem('right CA');
    const otherCa = await caPem('other CA');
    const leaf = await writePem(await makeLeaf({ ca }));
    const serve = await startServe({ args: ['--cert', leaf.cert, '--key', leaf.key] });

    const wrongCa = await failingConnect([serve.address, '--ca', await writeCa(otherCa)], serve.token);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(/The certificate of 127\.0\.0\.1:\d+ failed verification: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)\. Check that the CA bundle is the one that issued the server certificate\. \[ERR_MUXTUN_TLS_UNTRUSTED\]/);

    const rightCa = await writeCa(ca);
    const wrongName = await failingConnect([serve.address, '--ca', rightCa, '--servername', 'tunnel.example.com'], serve.token);
    expect(wrongName.code).toBe(1);
    expect(wrongName.stderr).toMatch(/failed verification: .*tunnel\.example\.com.*\(ERR_TLS_CERT_ALTNAME_INVALID\)\. Connect using a name the certificate lists/);

    // The right CA and name work, so the failures above were about trust alone.
    const echo = await echoServer();
    const lPort = await freePort();
    await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], trust: { ca: rightCa, servername: 'localhost' }, fastHeartbeat: true });
    await expectEcho(lPort);
    expect(serve.process.alive).toBe(true);
  });

  it('an expired certificate: refused with --ca; accepted when pinned by fingerprint, with a warning', async () => {
    const ca = await caPem('CA');
    const now = Date.now();
    const expired = await writePem(await makeLeaf({ ca, notBefore: new Date(now - 30 * 86_400_000), notAfter: new Date(now - 86_400_000) }));
    const serve = await startServe({ args: ['--cert', expired.cert, '--key', expired.key] });

    const viaCa = await failingConnect([serve.address, '--ca', await writeCa(ca)], serve.token);
    expect(viaCa.code).toBe(1);
    expect(viaCa.stderr).toMatch(/failed verification: certificate has expired \(CERT_HAS_EXPIRED\).*\[ERR_MUXTUN_TLS_UNTRUSTED\]/);

    // Pinning trusts this exact certificate, dates included (like an ssh host
    // key): the connection works, and connect says the certificate expired.
    const echo = await echoServer();
    const lPort = await freePort();
    const pinned = await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true });
    await expectEcho(lPort);
    const warning = await pinned.process.waitForLog((l) => l.level === 40 && /expired/.test(l.msg));
    expect(warning.msg).toMatch(/the server's certificate expired on .*; accepted because --fingerprint pins this exact certificate/);
  });

  it('a server restarted with another certificate: --fingerprint and trust on first use refuse it, loudly, exit 1', async () => {
    const echo = await echoServer();
    const first = await startServe();
    const knownHosts = join(await tempDir(), 'known_hosts');
    const lPort = await freePort();
    // Trust on first use records the first identity; a pinned client runs alongside.
    const tofu = await startConnect(first, { local: [`${lPort}:127.0.0.1:${echo.port}`], trust: { knownHosts }, fastHeartbeat: true });
    await tofu.process.waitForLog('first connection to this server: recorded its fingerprint in known_hosts (trust on first use)');
    const pinned = await startConnect(first, { local: [`${await freePort()}:127.0.0.1:${echo.port}`], fastHeartbeat: true });
    await expectEcho(lPort);

    // Same port, new state dir: a new identity.
    await first.process.kill();
    const second = await startServe({ port: first.port });
    expect(second.fingerprint).not.toBe(first.fingerprint);

    // The running clients reconnect, see the new certificate, and give up for good.
    const pinnedExit = await pinned.process.waitForExit(20_000);
    expect(pinnedExit.code).toBe(1);
    expect(pinned.process.stderr.join('\n')).toContain('presented a certificate that does not match the pinned fingerprint');
    const tofuExit = await tofu.process.waitForExit(20_000);
    expect(tofuExit.code).toBe(1);
    expect(tofu.process.stderr.join('\n')).toContain('WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!');

    // And fresh ones are refused the same way.
    const fresh = await failingConnect([second.address, '--fingerprint', first.fingerprint], second.token);
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toContain(`expected: ${first.fingerprint}`);
    expect(fresh.stderr).toContain(`got:      ${second.fingerprint}`);
    expect(fresh.stderr).toContain('[ERR_MUXTUN_FINGERPRINT_MISMATCH]');
    const freshTofu = await failingConnect([second.address, '--known-hosts', knownHosts], second.token);
    expect(freshTofu.code).toBe(1);
    expect(freshTofu.stderr).toContain(`but the server presented\n  ${second.fingerprint}`);
    expect(freshTofu.stderr).toContain('[ERR_MUXTUN_HOST_KEY_CHANGED]');
    expect(second.process.alive).toBe(true);
  });
});
