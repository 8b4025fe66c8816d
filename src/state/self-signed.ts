import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Validity of the generated certificate. Pinned and TOFU clients do not check dates; CA clients never see it. */
export const SELF_SIGNED_VALIDITY_YEARS = 10;

/**
 * Backdating `notBefore` by this much keeps a client whose clock runs a
 * little behind from seeing a "not yet valid" certificate on first start.
 */
const CLOCK_SKEW_MS = 60 * 60 * 1000;

/** A fresh ECDSA P-256 private key, PKCS#8 PEM. */
export async function generateServerKey(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A self-signed server certificate (PEM) for an existing ECDSA P-256 key:
 * CN "muxtun", SAN DNS:localhost, IP:127.0.0.1, IP:::1, signed with
 * ecdsa-with-SHA256, valid for {@link SELF_SIGNED_VALIDITY_YEARS} years.
 *
 * The key is generated separately (not by `selfsigned`) so a certificate can
 * be issued for a key that is already on disk; see certificate.ts for why.
 */
export async function createSelfSignedCertificate(keyPem: string, now: Date = new Date()): Promise<string> {
  const publicKeyPem = createPublicKey(createPrivateKey(keyPem))
    .export({ type: 'spki', format: 'pem' })
    .toString();
  const notBeforeDate = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfterDate = new Date(now);
  notAfterDate.setUTCFullYear(notAfterDate.getUTCFullYear() + SELF_SIGNED_VALIDITY_YEARS);
  // Loaded only when an identity is made: node-forge is megabytes of heap that
  // every garbage collection of a busy server would otherwise walk again.
  const { generate } = await import('selfsigned');
  const result = await generate([{ name: 'commonName', value: 'muxtun' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    keyPair: { privateKey: keyPem, publicKey: publicKeyPem },
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return result.cert;
}
