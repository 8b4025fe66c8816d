import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import { MuxtunTlsError, TlsErrorCode } from './errors.js';

/**
 * Certificate fingerprints as muxtun prints and pins them:
 * `sha256:` followed by the lowercase hex SHA-256 of the certificate's DER
 * encoding, without separators. It is the same digest as
 * `openssl x509 -noout -fingerprint -sha256`, only written compactly, and
 * {@link parseFingerprint} accepts that OpenSSL form too.
 */

/** Prefix of every fingerprint muxtun prints. */
export const FINGERPRINT_PREFIX = 'sha256:';

const SHA256_HEX_DIGITS = 64;

/**
 * The canonical fingerprint of a certificate.
 *
 * @param cert - a PEM string, the DER bytes, or a parsed certificate
 * @returns `sha256:` + 64 lowercase hex digits
 * @throws {@link MuxtunTlsError} `ERR_MUXTUN_CERT_INVALID` when a PEM string does not parse
 */
export function fingerprintOf(cert: string | Uint8Array | X509Certificate): string {
  let der: Uint8Array;
  if (cert instanceof X509Certificate) {
    der = cert.raw;
  } else if (typeof cert === 'string') {
    try {
      der = new X509Certificate(cert).raw;
    } catch (error) {
      throw new MuxtunTlsError(TlsErrorCode.CERT_INVALID, 'Cannot compute fingerprint: not a PEM certificate', {
        cause: error,
      });
    }
  } else {
    der = cert;
  }
  return FINGERPRINT_PREFIX + createHash('sha256').update(der).digest('hex');
}

/**
 * Parses a fingerprint typed or pasted by a user into the canonical
 * `sha256:hex` form. Accepted: `sha256:HEX` (prefix in any case), the
 * prefix omitted, hex in either case, and colon-separated byte pairs as
 * OpenSSL prints them (`AB:CD:...`, also after `SHA256 Fingerprint=`).
 *
 * @throws {@link MuxtunTlsError} `ERR_MUXTUN_BAD_FINGERPRINT` saying what is wrong
 */
export function parseFingerprint(text: string): string {
  const original = text;
  let rest = text.trim();
  const fail = (what: string): never => {
    throw new MuxtunTlsError(
      TlsErrorCode.BAD_FINGERPRINT,
      `Invalid certificate fingerprint ${JSON.stringify(original)}: ${what}. ` +
        `Expected ${FINGERPRINT_PREFIX} followed by ${SHA256_HEX_DIGITS} hex digits, ` +
        'as printed by muxtun serve.',
    );
  };
  if (rest === '') fail('it is empty');

  const openssl = /^sha-?256\s+fingerprint\s*=\s*/i.exec(rest);
  if (openssl !== null) {
    rest = rest.slice(openssl[0].length);
  } else {
    const prefix = /^([a-z][a-z0-9-]*):/i.exec(rest);
    // Bare colon-separated hex starts with two hex digits and a colon (`ab:`),
    // which this also matches; only treat it as a prefix when it is not hex.
    if (prefix !== null && !/^[0-9a-f]{2}$/i.test(prefix[1] ?? '')) {
      const algorithm = (prefix[1] ?? '').toLowerCase();
      if (algorithm !== 'sha256' && algorithm !== 'sha-256') {
        fail(`unsupported algorithm "${prefix[1]}" (only sha256 is supported)`);
      }
      rest = rest.slice(prefix[0].length);
    }
  }

  let hex = rest;
  if (rest.includes(':')) {
    const pairs = rest.split(':');
    const badPair = pairs.findIndex((pair) => pair.length !== 2);
    if (badPair !== -1) {
      fail(`colon-separated form must have exactly two hex digits per group (group ${badPair + 1} is "${pairs[badPair]}")`);
    }
    hex = pairs.join('');
  }
  const badChar = /[^0-9a-f]/i.exec(hex);
  if (badChar !== null) fail(`"${badChar[0]}" is not a hex digit`);
  if (hex.length !== SHA256_HEX_DIGITS) {
    fail(`it has ${hex.length} hex digits, a SHA-256 fingerprint has ${SHA256_HEX_DIGITS}`);
  }
  return FINGERPRINT_PREFIX + hex.toLowerCase();
}

/**
 * Compares two fingerprints in constant time. Both are parsed first, so
 * `AB:CD...` equals `sha256:abcd...`.
 *
 * @throws {@link MuxtunTlsError} `ERR_MUXTUN_BAD_FINGERPRINT` when either is malformed
 */
export function fingerprintsEqual(a: string, b: string): boolean {
  const left = Buffer.from(parseFingerprint(a).slice(FINGERPRINT_PREFIX.length), 'hex');
  const right = Buffer.from(parseFingerprint(b).slice(FINGERPRINT_PREFIX.length), 'hex');
  return timingSafeEqual(left, right);
}
