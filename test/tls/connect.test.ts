import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  FingerprintMismatchError,
  connectTls,
  fingerprintOf,
  serverTlsOptions,
  type ClientTrust,
} from '../../src/tls/index.js';
import { HostKeyMismatchError, knownHostsFile, loadOrCreateServerCertificate } from '../../src/state/index.js';
import { caPem, makeLeaf } from '../support/certs.js';
import { listen, tlsEchoServer } from '../support/net.js';
import { tempDir } from '../support/fs.js';
import { track } from '../support/scope.js';
import { rejection } from '../support/wait.js';

async function connect(port: number, trust: ClientTrust, extra: { servername?: string; host?: string } = {}) {
  const connection = await connectTls({ host: extra.host ?? '127.0.0.1', port, trust, timeoutMs: 5000, ...extra });
  track(connection.socket);
  connection.socket.on('error', () => undefined);
  return connection;
}

/** Writes `text` and resolves with what the echo server sends back. */
function echoText(socket: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.length >= text.length) resolve(received);
    });
    socket.once('error', reject);
    socket.write(text);
  });
}

async function muxtunServer() {
  const identity = await loadOrCreateServerCertificate(join(await tempDir(), 'state'));
  const server = await tlsEchoServer(serverTlsOptions(identity));
  return { identity, ...server };
}

describe('connectTls with a pinned fingerprint', () => {
  it('connects when the fingerprint matches, over TLS 1.3', async () => {
    const { identity, port } = await muxtunServer();
    const connection = await connect(port, { kind: 'fingerprint', fingerprint: identity.fingerprint });
    expect(connection.fingerprint).toBe(identity.fingerprint);
    expect(connection.recorded).toBe(false);
    expect(connection.socket.getProtocol()).toBe('TLSv1.3');
    expect(await echoText(connection.socket, 'ping')).toBe('ping');
  });

  it('accepts the pin in OpenSSL colon form', async () => {
    const { identity, port } = await muxtunServer();
    const colons = identity.fingerprint.slice('sha256:'.length).toUpperCase().match(/../g)?.join(':') ?? '';
    const connection = await connect(port, { kind: 'fingerprint', fingerprint: colons });
    expect(connection.fingerprint).toBe(identity.fingerprint);
  });

  it('refuses another certificate before sending any application data', async () => {
    const { identity, port, nextConnection, appBytes } = await muxtunServer();
    const pinned = fingerprintOf((await makeLeaf()).cert);
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: { kind: 'fingerprint', fingerprint: pinned } }));
    expect(error).toBeInstanceOf(FingerprintMismatchError);
    expect(error.code).toBe('ERR_MUXTUN_FINGERPRINT_MISMATCH');
    expect(error.message).toContain(`expected: ${pinned}`);
    expect(error.message).toContain(`got:      ${identity.fingerprint}`);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    // The client hung up without a single application byte reaching the server.
    await (await nextConnection()).closed;
    expect(appBytes()).toBe(0);
  });

  it('rejects a malformed pin without dialling', async () => {
    const { port, connections } = await muxtunServer();
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: { kind: 'fingerprint', fingerprint: 'sha256:nope' } }));
    expect(error.code).toBe('ERR_MUXTUN_BAD_FINGERPRINT');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connections).toHaveLength(0);
  });
});

describe('connectTls with a CA', () => {
  it('connects to a CA-signed server, checking the host name', async () => {
    const ca = await caPem();
    const leaf = await makeLeaf({ ca: ca, names: ['localhost', '127.0.0.1'] });
    const { port } = await tlsEchoServer(serverTlsOptions(leaf));
    const byIp = await connect(port, { kind: 'ca', caPem: ca.cert });
    expect(byIp.socket.authorized).toBe(true);
    expect(byIp.fingerprint).toBe(fingerprintOf(leaf.cert));
    const byName = await connect(port, { kind: 'ca', caPem: ca.cert }, { servername: 'localhost' });
    expect(await echoText(byName.socket, 'hello')).toBe('hello');
  });

  it('rejects a host name the certificate does not list', async () => {
    const ca = await caPem();
    const { port } = await tlsEchoServer(serverTlsOptions(await makeLeaf({ ca: ca, names: ['localhost', '127.0.0.1'] })));
    const error = await rejection(
      connectTls({ host: '127.0.0.1', port, servername: 'wrong.example', trust: { kind: 'ca', caPem: ca.cert } }),
    );
    expect(error.code).toBe('ERR_MUXTUN_TLS_UNTRUSTED');
    expect(error.message).toContain('wrong.example');
    expect(error.message).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('rejects a certificate from another CA with the OpenSSL reason', async () => {
    const ca = await caPem();
    const otherCa = await caPem('other CA');
    const { port } = await tlsEchoServer(serverTlsOptions(await makeLeaf({ ca: otherCa })));
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: { kind: 'ca', caPem: ca.cert } }));
    expect(error.code).toBe('ERR_MUXTUN_TLS_UNTRUSTED');
    expect(error.message).toMatch(/unable to verify the first certificate|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  it('rejects the self-signed muxtun certificate in CA mode', async () => {
    const { port } = await muxtunServer();
    const ca = await caPem();
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: { kind: 'ca', caPem: ca.cert } }));
    expect(error.code).toBe('ERR_MUXTUN_TLS_UNTRUSTED');
    expect(error.message).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('rejects a CA bundle that is not PEM before dialling', async () => {
    const error = await rejection(connectTls({ host: '127.0.0.1', port: 1, trust: { kind: 'ca', caPem: 'nope' } }));
    expect(error.code).toBe('ERR_MUXTUN_CERT_INVALID');
  });
});

describe('connectTls with trust on first use', () => {
  it('records an unknown server, then verifies it, then refuses a changed certificate', async () => {
    const path = join(await tempDir(), 'config', 'known_hosts');
    const trust: ClientTrust = { kind: 'tofu', knownHosts: knownHostsFile(path) };
    const { identity, port, server, nextConnection, appBytes } = await muxtunServer();

    const first = await connect(port, trust);
    expect(first).toMatchObject({ fingerprint: identity.fingerprint, recorded: true });
    expect(await readFile(path, 'utf8')).toContain(`127.0.0.1:${port} ${identity.fingerprint}\n`);
    await nextConnection();

    const second = await connect(port, trust);
    expect(second).toMatchObject({ fingerprint: identity.fingerprint, recorded: false });
    expect(await echoText(second.socket, 'again')).toBe('again');
    await nextConnection();
    const bytesBefore = appBytes();

    // Same host:port, new certificate.
    const impostor = await makeLeaf();
    server.setSecureContext(serverTlsOptions(impostor));
    const before = await readFile(path, 'utf8');
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust }));
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    expect(error.code).toBe('ERR_MUXTUN_HOST_KEY_CHANGED');
    expect(error.message).toContain('REMOTE HOST IDENTIFICATION HAS CHANGED');
    expect(error.message).toContain(identity.fingerprint);
    expect(error.message).toContain(fingerprintOf(impostor.cert));
    expect(await readFile(path, 'utf8')).toBe(before);
    await (await nextConnection()).closed;
    expect(appBytes()).toBe(bytesBefore);
  });
});

describe('connectTls in insecure mode', () => {
  it('connects to anything and still reports the fingerprint', async () => {
    const { identity, port } = await muxtunServer();
    const connection = await connect(port, { kind: 'insecure' });
    expect(connection.fingerprint).toBe(identity.fingerprint);
  });
});

describe('connectTls failures', () => {
  const pin: ClientTrust = { kind: 'fingerprint', fingerprint: `sha256:${'0'.repeat(64)}` };

  it('reports a refused connection as ERR_MUXTUN_CONNECT naming host:port', async () => {
    const { port, server } = await listen(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: pin }));
    expect(error.code).toBe('ERR_MUXTUN_CONNECT');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toContain('refused');
  });

  it('reports a plaintext server that answers as ERR_MUXTUN_TLS_HANDSHAKE', async () => {
    const { port } = await listen((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'));
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: pin }));
    expect(error.code).toBe('ERR_MUXTUN_TLS_HANDSHAKE');
    expect(error.message).toContain('did not answer with TLS');
    expect(error.message).toContain('muxtun serve');
  });

  it('reports a plaintext server that hangs up as ERR_MUXTUN_TLS_HANDSHAKE', async () => {
    const { port } = await listen((socket) => socket.once('data', () => socket.destroy()));
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: pin }));
    expect(error.code).toBe('ERR_MUXTUN_TLS_HANDSHAKE');
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('reports a server limited to TLS 1.2 as a handshake error about the version', async () => {
    const pem = await makeLeaf();
    const { port } = await tlsEchoServer({ ...pem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: { kind: 'insecure' } }));
    expect(error.code).toBe('ERR_MUXTUN_TLS_HANDSHAKE');
    expect(error.message).toContain('does not support TLS 1.3');
  });

  it('times out on a server that accepts but never answers', async () => {
    const { port } = await listen(() => undefined);
    const started = Date.now();
    const error = await rejection(connectTls({ host: '127.0.0.1', port, trust: pin, timeoutMs: 300 }));
    expect(error.code).toBe('ERR_MUXTUN_CONNECT_TIMEOUT');
    expect(error.message).toContain('300 ms');
    expect(error.message).toContain('TLS handshake');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('rejects nonsense arguments', async () => {
    expect((await rejection(connectTls({ host: '127.0.0.1', port: 0, trust: pin }))).code).toBe('ERR_MUXTUN_INVALID_ARGUMENT');
    expect((await rejection(connectTls({ host: '127.0.0.1', port: 1, trust: pin, timeoutMs: 0 }))).code).toBe(
      'ERR_MUXTUN_INVALID_ARGUMENT',
    );
  });
});
