/** Certificates for the TLS hardening tests, written to files for --cert, --key and --ca. */
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { fingerprintOf } from '../../../src/tls/index.js';
import type { Pem } from '../../tls/helpers.js';
import { tempDir } from './process.js';

export type { Pem } from '../../tls/helpers.js';
/** A CA able to sign leaves (the TLS unit tests' own). */
export { caPem as makeCa } from '../../tls/helpers.js';

/** A server leaf for localhost and 127.0.0.1, signed by `ca` (or self-signed), valid over the given dates. */
export async function makeLeaf(options: { ca?: Pem; notBefore?: Date; notAfter?: Date } = {}): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...(options.ca ? { ca: { cert: options.ca.cert, key: options.ca.key } } : {}),
    ...(options.notBefore ? { notBeforeDate: options.notBefore } : {}),
    ...(options.notAfter ? { notAfterDate: options.notAfter } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { cert: result.cert, key: result.private };
}

/** Writes a PEM pair (and optionally a CA cert) to files; returns their paths and the leaf's fingerprint. */
export async function writePem(pem: Pem, ca?: Pem): Promise<{ cert: string; key: string; ca?: string; fingerprint: string }> {
  const dir = await tempDir('muxtun-certs-');
  const paths = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), ...(ca ? { ca: join(dir, 'ca.pem') } : {}) };
  await writeFile(paths.cert, pem.cert);
  await writeFile(paths.key, pem.key, { mode: 0o600 });
  if (ca) await writeFile(paths.ca!, ca.cert);
  return { ...paths, fingerprint: fingerprintOf(new X509Certificate(pem.cert)) };
}

/** Writes a CA certificate alone, for connect --ca. */
export async function writeCa(ca: Pem): Promise<string> {
  const path = join(await tempDir('muxtun-ca-'), 'ca.pem');
  await writeFile(path, ca.cert);
  return path;
}
