import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MAX_CERT_FILE_BYTES,
  SERVER_CERT_FILE,
  SERVER_KEY_FILE,
  loadCertificateFiles,
  loadOrCreateServerCertificate,
} from '../../src/state/index.js';
import { fingerprintOf } from '../../src/tls/index.js';
import { makeLeaf, writePem } from '../support/certs.js';
import { fileMode, tempDir } from '../support/fs.js';
import { rejection } from '../support/wait.js';

const YEAR_MS = 365.25 * 24 * 3600 * 1000;

describe('loadOrCreateServerCertificate', () => {
  it('creates the state dir, a 0600 key and a self-signed ECDSA certificate on first start', async () => {
    const stateDir = join(await tempDir(), 'state');
    const identity = await loadOrCreateServerCertificate(stateDir);

    expect(identity.created).toBe(true);
    expect(await fileMode(stateDir)).toBe(0o700);
    expect(await fileMode(join(stateDir, SERVER_KEY_FILE))).toBe(0o600);
    expect(await fileMode(join(stateDir, SERVER_CERT_FILE))).toBe(0o644);
    expect(await readFile(join(stateDir, SERVER_CERT_FILE), 'utf8')).toBe(identity.cert);
    expect(await readFile(join(stateDir, SERVER_KEY_FILE), 'utf8')).toBe(identity.key);

    const cert = new X509Certificate(identity.cert);
    expect(identity.fingerprint).toBe(fingerprintOf(cert));
    expect(identity.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(cert.subject).toBe('CN=muxtun');
    expect(identity.cert.endsWith('-----END CERTIFICATE-----\n')).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(createPrivateKey(identity.key))).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    const lifetime = Date.parse(cert.validTo) - Date.now();
    expect(lifetime).toBeGreaterThan(9.9 * YEAR_MS);
    expect(Date.parse(cert.validFrom)).toBeLessThan(Date.now());
  });

  it('reuses the same identity on later starts', async () => {
    const stateDir = await tempDir();
    await chmod(stateDir, 0o700);
    const first = await loadOrCreateServerCertificate(stateDir);
    const second = await loadOrCreateServerCertificate(stateDir);
    expect(second.created).toBe(false);
    expect(second.fingerprint).toBe(first.fingerprint);
    expect(second.cert).toBe(first.cert);
    expect(second.key).toBe(first.key);
  });

  it('gives servers starting at the same time one shared identity', async () => {
    const stateDir = join(await tempDir(), 'state');
    const results = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateServerCertificate(stateDir)));
    expect(new Set(results.map((result) => result.fingerprint)).size).toBe(1);
    expect(new Set(results.map((result) => result.key)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    // No temp files left behind.
    expect((await readdir(stateDir)).sort()).toEqual([SERVER_CERT_FILE, SERVER_KEY_FILE]);
  });

  it('refuses a group-readable key and says which chmod fixes it', async () => {
    const stateDir = join(await tempDir(), 'state');
    await loadOrCreateServerCertificate(stateDir);
    const keyPath = join(stateDir, SERVER_KEY_FILE);
    await chmod(keyPath, 0o640);
    const error = await rejection(loadOrCreateServerCertificate(stateDir));
    expect(error.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(error.message).toContain(keyPath);
    expect(error.message).toContain(`chmod 600 ${keyPath}`);
  });

  it('refuses a state directory others can enter', async () => {
    const stateDir = await tempDir();
    await chmod(stateDir, 0o711);
    const error = await rejection(loadOrCreateServerCertificate(stateDir));
    expect(error.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(error.message).toContain(`chmod 700 ${stateDir}`);
  });

  it('refuses a damaged key instead of silently replacing the identity', async () => {
    const stateDir = join(await tempDir(), 'state');
    await loadOrCreateServerCertificate(stateDir);
    await writeFile(join(stateDir, SERVER_KEY_FILE), 'not a key\n', { mode: 0o600 });
    const error = await rejection(loadOrCreateServerCertificate(stateDir));
    expect(error.code).toBe('ERR_MUXTUN_CERT_INVALID');
    expect(error.message).toContain('rm ');
  });

  it('refuses a certificate that does not belong to the key', async () => {
    const stateDir = join(await tempDir(), 'state');
    await loadOrCreateServerCertificate(stateDir);
    const other = await makeLeaf();
    await writeFile(join(stateDir, SERVER_CERT_FILE), other.cert);
    const error = await rejection(loadOrCreateServerCertificate(stateDir));
    expect(error.code).toBe('ERR_MUXTUN_CERT_INVALID');
    expect(error.message).toContain('does not belong');
  });

  it('issues a certificate for an existing key when only the certificate is missing', async () => {
    const stateDir = join(await tempDir(), 'state');
    const first = await loadOrCreateServerCertificate(stateDir);
    await rm(join(stateDir, SERVER_CERT_FILE));
    const second = await loadOrCreateServerCertificate(stateDir);
    expect(second.created).toBe(true);
    expect(second.key).toBe(first.key);
    expect(second.fingerprint).not.toBe(first.fingerprint);
  });
});

describe('loadCertificateFiles', () => {
  it('loads a matching pair and fingerprints the certificate', async () => {
    const pem = await makeLeaf();
    const { cert: certPath, key: keyPath } = await writePem(pem);
    const loaded = await loadCertificateFiles(certPath, keyPath);
    expect(loaded).toEqual({ cert: pem.cert, key: pem.key, fingerprint: fingerprintOf(pem.cert) });
  });

  it('reports a missing file as ERR_MUXTUN_CERT_READ naming it', async () => {
    const { cert: certPath } = await writePem(await makeLeaf());
    const dir = dirname(certPath);
    const missing = join(dir, 'missing.pem');
    const error = await rejection(loadCertificateFiles(certPath, missing));
    expect(error.code).toBe('ERR_MUXTUN_CERT_READ');
    expect(error.message).toContain(missing);
    expect(error.message).toContain('no such file');
  });

  it('refuses files over the size limit', async () => {
    const { cert: certPath, key: keyPath } = await writePem(await makeLeaf());
    await writeFile(certPath, Buffer.alloc(MAX_CERT_FILE_BYTES + 1, 0x41));
    const error = await rejection(loadCertificateFiles(certPath, keyPath));
    expect(error.code).toBe('ERR_MUXTUN_CERT_READ');
    expect(error.message).toContain(`${MAX_CERT_FILE_BYTES}-byte limit`);
  });

  it('reports text that is not a certificate as ERR_MUXTUN_CERT_INVALID', async () => {
    const { cert: certPath, key: keyPath } = await writePem(await makeLeaf());
    await writeFile(certPath, 'hello\n');
    const error = await rejection(loadCertificateFiles(certPath, keyPath));
    expect(error.code).toBe('ERR_MUXTUN_CERT_INVALID');
    expect(error.message).toContain(certPath);
  });

  it('reports a key that belongs to another certificate', async () => {
    const { cert: certPath, key: keyPath } = await writePem(await makeLeaf());
    const other = await makeLeaf();
    await writeFile(keyPath, other.key);
    const error = await rejection(loadCertificateFiles(certPath, keyPath));
    expect(error.code).toBe('ERR_MUXTUN_CERT_INVALID');
    expect(error.message).toContain('does not match');
    expect(error.message).toContain(keyPath);
    expect(error.message).toContain(certPath);
  });

  it('explains that an encrypted key must be decrypted first', async () => {
    const pem = await makeLeaf();
    const { cert: certPath, key: keyPath } = await writePem(pem);
    const encrypted = createPrivateKey(pem.key).export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'secret',
    });
    await writeFile(keyPath, encrypted);
    const error = await rejection(loadCertificateFiles(certPath, keyPath));
    expect(error.code).toBe('ERR_MUXTUN_CERT_INVALID');
    expect(error.message).toContain('encrypted');
  });

  it('accepts a certificate followed by its chain and fingerprints the leaf', async () => {
    const pem = await makeLeaf();
    const extra = await makeLeaf({ names: ['intermediate.example'] });
    const { cert: certPath, key: keyPath } = await writePem(pem);
    const chain = `${pem.cert.trimEnd()}\n${extra.cert.trimEnd()}\n`;
    await writeFile(certPath, chain);
    const loaded = await loadCertificateFiles(certPath, keyPath);
    expect(loaded.fingerprint).toBe(fingerprintOf(pem.cert));
    expect(loaded.cert).toBe(chain);
  });
});
