import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprintOf, fingerprintsEqual, parseFingerprint } from '../../src/tls/index.js';
import { makeLeaf } from '../support/certs.js';

const HEX = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const CANONICAL = `sha256:${HEX}`;
const COLONS = HEX.toUpperCase().match(/../g)?.join(':') ?? '';

function parseError(text: string): Error & { code?: string } {
  try {
    parseFingerprint(text);
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error(`parseFingerprint accepted ${text}`);
}

describe('fingerprintOf', () => {
  it('is sha256: plus lowercase hex of the DER, the same from PEM, DER and parsed', async () => {
    const { cert } = await makeLeaf();
    const x509 = new X509Certificate(cert);
    const fingerprint = fingerprintOf(cert);
    expect(fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(fingerprintOf(x509.raw)).toBe(fingerprint);
    expect(fingerprintOf(x509)).toBe(fingerprint);
    // Node's own SHA-256 fingerprint is the same digest, colon-separated and uppercase.
    expect(fingerprint).toBe(`sha256:${x509.fingerprint256.replaceAll(':', '').toLowerCase()}`);
  });

  it('rejects text that is not a PEM certificate', () => {
    expect(() => fingerprintOf('hello')).toThrow(expect.objectContaining({ code: 'ERR_MUXTUN_CERT_INVALID' }));
  });
});

describe('parseFingerprint', () => {
  it.each([
    ['canonical', CANONICAL],
    ['uppercase prefix and hex', `SHA256:${HEX.toUpperCase()}`],
    ['colon-separated pairs', `sha256:${COLONS}`],
    ['bare colon-separated (OpenSSL style)', COLONS],
    ['bare hex', HEX],
    ['openssl output line', `SHA256 Fingerprint=${COLONS}`],
    ['surrounding whitespace', `  ${CANONICAL}\n`],
  ])('accepts %s', (_name, text) => {
    expect(parseFingerprint(text)).toBe(CANONICAL);
  });

  it.each([
    ['', /empty/],
    ['sha1:abcd', /unsupported algorithm "sha1"/],
    [`sha256:${HEX.slice(2)}`, /62 hex digits.*64/],
    [`sha256:${HEX}00`, /66 hex digits/],
    [`sha256:${HEX.slice(1)}z`, /"z" is not a hex digit/],
    [`sha256:${COLONS.slice(1)}`, /two hex digits per group/],
  ])('rejects %j naming the problem', (text, pattern) => {
    const error = parseError(text);
    expect(error.code).toBe('ERR_MUXTUN_BAD_FINGERPRINT');
    expect(error.message).toMatch(pattern);
  });
});

describe('fingerprintsEqual', () => {
  it('compares the digests, not the spelling', () => {
    expect(fingerprintsEqual(CANONICAL, COLONS)).toBe(true);
    expect(fingerprintsEqual(CANONICAL, `sha256:${'0'.repeat(64)}`)).toBe(false);
  });

  it('throws on a malformed side instead of answering false', () => {
    expect(() => fingerprintsEqual(CANONICAL, 'nope')).toThrow(
      expect.objectContaining({ code: 'ERR_MUXTUN_BAD_FINGERPRINT' }),
    );
  });
});
