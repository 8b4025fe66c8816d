import { MuxtunError } from '../errors.js';

/**
 * Every code the transport layer raises: reaching the server's TLS through a
 * proxy or a WebSocket, before any TLS is spoken. Stable: match on these.
 */
export const TransportErrorCode = {
  /** The proxy itself cannot be reached (refused, unreachable, name not found, dropped before answering). */
  PROXY_UNREACHABLE: 'ERR_MUXTUN_PROXY_UNREACHABLE',
  /** The proxy wants credentials, or refused the ones given (HTTP 407, SOCKS authentication failure). */
  PROXY_AUTH: 'ERR_MUXTUN_PROXY_AUTH',
  /** The HTTP proxy refused the CONNECT (its status line is in the message), or answered something that is not HTTP. */
  PROXY_REFUSED: 'ERR_MUXTUN_PROXY_REFUSED',
  /** The SOCKS5 proxy answered with an error (its reply code in words). */
  PROXY_SOCKS: 'ERR_MUXTUN_PROXY_SOCKS',
  /** The WebSocket upgrade failed: not reachable, refused (status shown), or stream mode not agreed (an older server, a proxy that re-frames messages). */
  WEBSOCKET: 'ERR_MUXTUN_WEBSOCKET',
  /** Dialling the proxy or the WebSocket did not finish in time. */
  CONNECT_TIMEOUT: 'ERR_MUXTUN_CONNECT_TIMEOUT',
} as const;

export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

/** An error of the transport layer; `code` is one of {@link TransportErrorCode}. Messages never hold proxy credentials. */
export class TransportError extends MuxtunError {
  declare readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
