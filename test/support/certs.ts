/** Certificates for tests: CAs, leaves (self-signed or signed by a CA, any validity), and files for --cert, --key and --ca. */
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { fingerprintOf } from '../../src/tls/index.js';
import { tempDir } from './fs.js';

export interface Pem {
  cert: string;
  key: string;
}

/** A CA certificate and key able to sign leaves. */
export async function caPem(name = 'muxtun test CA'): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: result.cert, key: result.private };
}

export interface LeafOptions {
  /** The names in subjectAltName (IP addresses as such), the first also the commonName; default localhost and 127.0.0.1. */
  names?: string[];
  /** The issuer; default none (self-signed). */
  ca?: Pem;
  notBefore?: Date;
  notAfter?: Date;
}

/** An ECDSA server certificate (a leaf) for `names`, self-signed or signed by `ca`. */
export async function makeLeaf(options: LeafOptions = {}): Promise<Pem> {
  const names = options.names ?? ['localhost', '127.0.0.1'];
  const result = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...(options.ca ? { ca: { cert: options.ca.cert, key: options.ca.key } } : {}),
    ...(options.notBefore ? { notBeforeDate: options.notBefore } : {}),
    ...(options.notAfter ? { notAfterDate: options.notAfter } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((name) => (/^[\d.]+$|:/.test(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name })),
      },
    ],
  });
  return { cert: result.cert, key: result.private };
}

/** Writes a PEM pair (and optionally a CA cert) to files in a temp dir; returns their paths and the leaf's fingerprint. */
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
