import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { writeFileExclusive } from '../util/atomic-file.js';
import { readFileBounded } from '../util/bounded-read.js';
import { MuxtunStateError, StateErrorCode } from './errors.js';
import { fingerprintOf } from '../tls/fingerprint.js';
import { createSelfSignedCertificate, generateServerKey } from './self-signed.js';
import { shellQuote } from '../util/shell-quote.js';
import {
  PUBLIC_FILE_MODE,
  SECRET_FILE_MODE,
  checkStateFile,
  ensureStateDir,
} from './state-dir.js';
import { errnoCode, errorMessage } from '../util/errors.js';

/**
 * The server's TLS identity: a certificate and key kept in the state
 * directory, or the operator's own pair.
 *
 * First start on a fresh state directory creates the key, then a
 * certificate for it; each file is published with {@link writeFileExclusive}
 * so it appears whole or not at all and an existing file is never replaced.
 * Every later start reuses both, so the fingerprint clients pinned stays
 * valid. Creating key and certificate as two separate first-writer-wins
 * steps also settles two servers starting at once: whichever key lands
 * first is the one both use, and any certificate issued for it matches.
 */

/** File name of the generated certificate inside the state directory. */
export const SERVER_CERT_FILE = 'server-cert.pem';
/** File name of the generated private key inside the state directory. */
export const SERVER_KEY_FILE = 'server-key.pem';
/** Largest certificate or key file read (a long chain is a few KiB). */
export const MAX_CERT_FILE_BYTES = 1024 * 1024;

/** A certificate with its private key, ready for {@link serverTlsOptions}. */
export interface CertificateMaterial {
  /** The certificate in PEM; may be followed by intermediates (the chain is served as given). */
  cert: string;
  /** The unencrypted private key in PEM. */
  key: string;
  /** {@link fingerprintOf} the (first) certificate: what clients pin. */
  fingerprint: string;
}

/** The server's own identity from the state directory. */
export interface ServerCertificate extends CertificateMaterial {
  /** `true` when this call generated the certificate: a new identity clients have not seen. */
  created: boolean;
}

/**
 * Loads the server certificate and key from `stateDir`, creating the
 * directory (0700), an ECDSA P-256 key (`server-key.pem`, 0600) and a
 * self-signed certificate (`server-cert.pem`, 0644) the first time.
 *
 * @throws {@link MuxtunStateError} with code `ERR_MUXTUN_STATE_DIR`,
 *   `ERR_MUXTUN_STATE_PERMISSIONS` (loose modes, with the chmod fix),
 *   `ERR_MUXTUN_STATE_WRITE`, `ERR_MUXTUN_CERT_GENERATE`,
 *   `ERR_MUXTUN_CERT_READ` or `ERR_MUXTUN_CERT_INVALID` (damaged files,
 *   or key and certificate that do not belong together)
 */
export async function loadOrCreateServerCertificate(stateDir: string): Promise<ServerCertificate> {
  await ensureStateDir(stateDir);
  const keyPath = join(stateDir, SERVER_KEY_FILE);
  const certPath = join(stateDir, SERVER_CERT_FILE);
  const resetHint =
    `To start over with a new identity (clients will see a new fingerprint), remove both files:\n` +
    `  rm ${shellQuote(keyPath)} ${shellQuote(certPath)}`;

  if (!(await checkStateFile(keyPath, 'secret'))) {
    await publish(keyPath, await generate(generateServerKey), SECRET_FILE_MODE);
  }
  await checkStateFile(keyPath, 'secret');
  const keyPem = await readPem(keyPath, 'private key');
  const key = parseKey(keyPem, keyPath, resetHint);

  let created = false;
  if (!(await checkStateFile(certPath, 'public'))) {
    const certPem = withNewline(await generate(() => createSelfSignedCertificate(keyPem)));
    created = await publish(certPath, certPem, PUBLIC_FILE_MODE);
  }
  await checkStateFile(certPath, 'public');
  const certPem = await readPem(certPath, 'certificate');
  const cert = parseCert(certPem, certPath, resetHint);
  if (!cert.checkPrivateKey(key)) {
    throw new MuxtunStateError(
      StateErrorCode.CERT_INVALID,
      `The private key ${keyPath} does not belong to the certificate ${certPath}. ${resetHint}`,
    );
  }
  return { cert: certPem, key: keyPem, fingerprint: fingerprintOf(cert), created };
}

/**
 * Loads an operator-supplied certificate (optionally followed by its chain)
 * and unencrypted private key, and checks that they parse and belong
 * together. Their file modes are not checked: operator keys often live in
 * group-readable places such as `/etc/ssl/private` on purpose.
 *
 * @throws {@link MuxtunStateError} `ERR_MUXTUN_CERT_READ` (missing, no access,
 *   larger than {@link MAX_CERT_FILE_BYTES}) or `ERR_MUXTUN_CERT_INVALID`
 *   (not PEM, encrypted key, key does not match the certificate)
 */
export async function loadCertificateFiles(certPath: string, keyPath: string): Promise<CertificateMaterial> {
  const certPem = await readPem(certPath, 'certificate');
  const keyPem = await readPem(keyPath, 'private key');
  const cert = parseCert(certPem, certPath, '');
  const key = parseKey(keyPem, keyPath, '');
  if (!cert.checkPrivateKey(key)) {
    throw new MuxtunStateError(
      StateErrorCode.CERT_INVALID,
      `The private key ${keyPath} does not match the certificate ${certPath} ` +
        `(certificate subject "${cert.subject.replaceAll('\n', ', ')}"): its public key is different. ` +
        'Check that both files come from the same certificate request.',
    );
  }
  return { cert: certPem, key: keyPem, fingerprint: fingerprintOf(cert) };
}

async function readPem(path: string, what: string): Promise<string> {
  let result;
  try {
    result = await readFileBounded(path, MAX_CERT_FILE_BYTES);
  } catch (error) {
    const code = errnoCode(error);
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : errorMessage(error);
    throw new MuxtunStateError(StateErrorCode.CERT_READ, `Cannot read ${what} ${path}: ${why}`, { cause: error });
  }
  if (result.tooLarge) {
    throw new MuxtunStateError(
      StateErrorCode.CERT_READ,
      `Cannot read ${what} ${path}: it is larger than the ${MAX_CERT_FILE_BYTES}-byte limit for PEM files`,
    );
  }
  return result.text;
}

function parseCert(pem: string, path: string, hint: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new MuxtunStateError(
      StateErrorCode.CERT_INVALID,
      `${path} is not a PEM certificate (${errorMessage(error)}).${hint === '' ? '' : ` ${hint}`}`,
      { cause: error },
    );
  }
}

function parseKey(pem: string, path: string, hint: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    // OpenSSL reports a passphrase-protected key only as "interrupted or
    // cancelled" (it wanted to prompt); the PEM headers say what happened.
    const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);
    const why =
      encrypted || errnoCode(error) === 'ERR_MISSING_PASSPHRASE'
        ? 'the key is encrypted; muxtun needs an unencrypted key (e.g. `openssl pkey -in KEY -out KEY.plain`)'
        : errorMessage(error);
    throw new MuxtunStateError(
      StateErrorCode.CERT_INVALID,
      `${path} is not a usable PEM private key: ${why}.${hint === '' ? '' : ` ${hint}`}`,
      { cause: error },
    );
  }
}

/** PEM files end with a newline, so `cat cert.pem chain.pem` stays valid PEM. */
function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

async function generate(make: () => Promise<string>): Promise<string> {
  try {
    return await make();
  } catch (error) {
    throw new MuxtunStateError(
      StateErrorCode.CERT_GENERATE,
      `Cannot generate the server certificate: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

async function publish(path: string, data: string, mode: number): Promise<boolean> {
  try {
    return await writeFileExclusive(path, data, mode);
  } catch (error) {
    throw new MuxtunStateError(StateErrorCode.STATE_WRITE, `Cannot write ${path}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
