import { MuxtunError } from '../errors.js';

/**
 * Every code raised about what muxtun keeps on disk: the state directory,
 * the server's certificate, key and token, and known_hosts. Stable: callers
 * match on these, never on message text.
 */
export const StateErrorCode = {
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
} as const;

/** One of the {@link StateErrorCode} values. */
export type StateErrorCode = (typeof StateErrorCode)[keyof typeof StateErrorCode];

/** An error about a file or directory muxtun keeps; `code` is one of {@link StateErrorCode}. */
export class MuxtunStateError extends MuxtunError {
  declare readonly code: StateErrorCode;

  constructor(code: StateErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * Like ssh's "REMOTE HOST IDENTIFICATION HAS CHANGED": the certificate a
 * server presents differs from the one recorded for it in known_hosts.
 * The message is deliberately loud and says how to fix it.
 */
export class HostKeyMismatchError extends MuxtunStateError {
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
      StateErrorCode.HOST_KEY_CHANGED,
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
