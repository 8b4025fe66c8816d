import { MuxtunError } from '../errors.js';

/**
 * Every code the TLS layer raises (the connection, the handshake, trusting the server). Stable: callers (the CLI) match on these,
 * never on message text, which is written for humans and may change.
 */
export const TlsErrorCode = {
  /** A certificate or key does not parse, or the key does not belong to the certificate. */
  CERT_INVALID: 'ERR_MUXTUN_CERT_INVALID',
  /** A fingerprint given by the user is malformed. */
  BAD_FINGERPRINT: 'ERR_MUXTUN_BAD_FINGERPRINT',
  /** Invalid connect arguments (port, host, trust settings). */
  TLS_CONFIG: 'ERR_MUXTUN_TLS_CONFIG',
  /** The TCP connection failed (refused, unreachable, name not found). */
  CONNECT: 'ERR_MUXTUN_CONNECT',
  /** TCP connect plus TLS handshake did not finish within the timeout. */
  CONNECT_TIMEOUT: 'ERR_MUXTUN_CONNECT_TIMEOUT',
  /** The TLS handshake failed: not a TLS server, no TLS 1.3, connection dropped. */
  TLS_HANDSHAKE: 'ERR_MUXTUN_TLS_HANDSHAKE',
  /** CA verification (chain or host name) of the server certificate failed. */
  TLS_UNTRUSTED: 'ERR_MUXTUN_TLS_UNTRUSTED',
  /** The server's certificate does not match the pinned fingerprint. */
  FINGERPRINT_MISMATCH: 'ERR_MUXTUN_FINGERPRINT_MISMATCH',
} as const;

/** One of the {@link TlsErrorCode} values. */
export type TlsErrorCode = (typeof TlsErrorCode)[keyof typeof TlsErrorCode];

/** An error raised by the TLS layer; `code` is one of {@link TlsErrorCode}. */
export class MuxtunTlsError extends MuxtunError {
  declare readonly code: TlsErrorCode;

  constructor(code: TlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The server presented a certificate other than the one pinned on the
 * command line. Carries both fingerprints so the CLI can show them apart
 * from the message.
 */
export class FingerprintMismatchError extends MuxtunTlsError {
  /** `host:port` that was dialled. */
  readonly hostPort: string;
  /** The pinned fingerprint (`sha256:HEX`). */
  readonly expected: string;
  /** The fingerprint of the certificate the server presented (`sha256:HEX`). */
  readonly presented: string;

  constructor(hostPort: string, expected: string, presented: string) {
    super(
      TlsErrorCode.FINGERPRINT_MISMATCH,
      [
        `The server at ${hostPort} presented a certificate that does not match the pinned fingerprint.`,
        `  expected: ${expected}`,
        `  got:      ${presented}`,
        'Refusing to connect; nothing was sent. If the server certificate was regenerated,',
        'confirm the new fingerprint with the server operator before pinning it.',
      ].join('\n'),
    );
    this.hostPort = hostPort;
    this.expected = expected;
    this.presented = presented;
  }
}
