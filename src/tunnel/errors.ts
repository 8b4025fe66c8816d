import { MuxtunError } from '../errors.js';

/** Codes the tunnel layer raises and sends in control `error` messages. Stable. */
export const TunnelErrorCode = {
  /** The token was missing or wrong. Not retried. */
  AUTH: 'ERR_MUXTUN_AUTH',
  /** The peer speaks another version of the tunnel protocol. Not retried. */
  VERSION: 'ERR_MUXTUN_VERSION',
  /** The peer broke the tunnel protocol (bad message, bad header, wrong stream type). */
  PROTOCOL: 'ERR_MUXTUN_PROTOCOL',
  /** The server did not answer the handshake: probably not a muxtun server. */
  HANDSHAKE: 'ERR_MUXTUN_HANDSHAKE',
  /** A forward is forbidden by the server's policy. */
  POLICY: 'ERR_MUXTUN_POLICY',
  /** A listening port could not be bound (in use, no permission). */
  BIND: 'ERR_MUXTUN_BIND',
  /** Dialling a forward's target failed. */
  DIAL: 'ERR_MUXTUN_DIAL',
  /** A limit of the server was reached; the message names it. */
  LIMIT: 'ERR_MUXTUN_LIMIT',
  /** The session to the server ended. */
  SESSION_LOST: 'ERR_MUXTUN_SESSION_LOST',
  /** No forward could be set up. */
  NO_FORWARDS: 'ERR_MUXTUN_NO_FORWARDS',
  /** A resume was refused (unknown or expired session, wrong secret): the client starts a fresh session. */
  RESUME_REFUSED: 'ERR_MUXTUN_RESUME_REFUSED',
  /** A forward could not be set up at start (like ssh's ExitOnForwardFailure); `--keep-going` runs without it. */
  FORWARD_FAILED: 'ERR_MUXTUN_FORWARD_FAILED',
  /** The server no longer accepts this session's user or token (a reload removed it): the session ended for good. Not retried. */
  ACCESS_REVOKED: 'ERR_MUXTUN_ACCESS_REVOKED',
  /** The server's operator closed this session (`muxtun session close`), with a reason: ended for good, not resumed. Not retried. */
  SESSION_CLOSED: 'ERR_MUXTUN_SESSION_CLOSED',
  /** A SOCKS client's handshake was malformed, too long, too slow, or asked for something not supported. */
  SOCKS: 'ERR_MUXTUN_SOCKS',
} as const;
export type TunnelErrorCode = (typeof TunnelErrorCode)[keyof typeof TunnelErrorCode];

export class TunnelError extends MuxtunError {
  constructor(code: TunnelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
