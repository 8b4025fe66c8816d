import { MuxtunError } from '../errors.js';

/**
 * Every code the TLS layer raises. Stable: callers (the CLI) match on these,
 * never on message text, which is written for humans and may change.
 */
export const TlsErrorCode = {
  /** The state directory cannot be created, or its path is not a directory. */
  STATE_DIR: 'ERR_MUXTUN_STATE_DIR',
  /** A state directory or file is open to group/others; the message says which `chmod` fixes it. */
  STATE_PERMISSIONS: 'ERR_MUXTUN_STATE_PERMISSIONS',
  /** Writing a file into the state directory failed. */
  STATE_WRITE: 'ERR_MUXTUN_STATE_WRITE',
  /** Generating the self-signed server certificate failed. */
  CERT_GENERATE: 'ERR_MUXTUN_CERT_GENERATE',
  /** A certificate or key file cannot be read (missing, no access, too large). */
  CERT_READ: 'ERR_MUXTUN_CERT_READ',
  /** A certificate or key does not parse, or the key does not belong to the certificate. */
  CERT_INVALID: 'ERR_MUXTUN_CERT_INVALID',
  /** A fingerprint given by the user is malformed. */
  BAD_FINGERPRINT: 'ERR_MUXTUN_BAD_FINGERPRINT',
  /** A token file cannot be read (missing, no access, too large). */
  TOKEN_READ: 'ERR_MUXTUN_TOKEN_READ',
  /** A token file is empty or has more than one line. */
  TOKEN_INVALID: 'ERR_MUXTUN_TOKEN_INVALID',
  /** The known_hosts file cannot be read, or is larger than the limit. */
  KNOWN_HOSTS_READ: 'ERR_MUXTUN_KNOWN_HOSTS_READ',
  /** A known_hosts line is malformed; the message names file and line. */
  KNOWN_HOSTS_INVALID: 'ERR_MUXTUN_KNOWN_HOSTS_INVALID',
  /** Appending to the known_hosts file failed. */
  KNOWN_HOSTS_WRITE: 'ERR_MUXTUN_KNOWN_HOSTS_WRITE',
  /** The server's certificate differs from the one recorded in known_hosts. */
  HOST_KEY_CHANGED: 'ERR_MUXTUN_HOST_KEY_CHANGED',
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

/**
 * Like ssh's "REMOTE HOST IDENTIFICATION HAS CHANGED": the certificate a
 * server presents differs from the one recorded for it in known_hosts.
 * The message is deliberately loud and says how to fix it.
 */
export class HostKeyMismatchError extends MuxtunTlsError {
  /** The known_hosts key, `host:port`. */
  readonly hostPort: string;
  /** The fingerprint recorded in known_hosts. */
  readonly recorded: string;
  /** The fingerprint of the certificate the server presented. */
  readonly presented: string;
  /** The known_hosts file holding the record. */
  readonly file: string;
  /** The 1-based line of the record in {@link HostKeyMismatchError.file}. */
  readonly line: number;

  constructor(details: {
    hostPort: string;
    recorded: string;
    presented: string;
    file: string;
    line: number;
  }) {
    const { hostPort, recorded, presented, file, line } = details;
    super(
      TlsErrorCode.HOST_KEY_CHANGED,
      [
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @',
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        'IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!',
        'Someone could be eavesdropping on you right now (man-in-the-middle attack)!',
        "It is also possible that the server's certificate has just been regenerated.",
        `The certificate fingerprint recorded for ${hostPort} in ${file}:${line} is`,
        `  ${recorded}`,
        'but the server presented',
        `  ${presented}`,
        'Refusing to connect; nothing was sent.',
        'If you know the change is expected, either remove line ' +
          `${line} from ${file} and connect again to record the new certificate,`,
        `or pin it explicitly with --fingerprint ${presented}`,
      ].join('\n'),
    );
    this.hostPort = hostPort;
    this.recorded = recorded;
    this.presented = presented;
    this.file = file;
    this.line = line;
  }
}
