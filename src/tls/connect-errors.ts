import { MuxtunTlsError, TlsErrorCode } from './errors.js';
import { errnoCode, errorMessage } from '../util/errors.js';

/** The step a connection attempt had reached: TCP connect, TLS handshake, or trust check. */
export type Phase = 'tcp' | 'tls' | 'verify';

/** The question to ask when a port does not behave like a muxtun server. */
export const NOT_MUXTUN_HINT = (hostPort: string): string =>
  `Is ${hostPort} a muxtun server (muxtun serve) and not some other TCP service?`;

/** OpenSSL certificate verification failures, as Node reports them (tls docs, "X509 certificate error codes"). */
const X509_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** OpenSSL errors meaning the peer does not do TLS 1.3. */
const PROTOCOL_VERSION_CODES = new Set([
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
  'ERR_SSL_TLSV1_ALERT_INSUFFICIENT_SECURITY',
]);

/** OpenSSL errors meaning the bytes received were not TLS records at all. */
const NOT_TLS_CODES = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_RECORD_LENGTH_MISMATCH',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_HTTP_REQUEST',
]);

/**
 * Maps whatever node:net/node:tls emitted to a {@link MuxtunTlsError}. The
 * phase decides between a TCP failure and a TLS one; within TLS, Node's
 * error codes tell certificate verification (X509 codes) from protocol
 * trouble (OpenSSL `ERR_SSL_*`).
 */
export function classifyError(error: unknown, phase: Phase, hostPort: string): MuxtunTlsError {
  if (error instanceof MuxtunTlsError) return error;
  const code = errnoCode(error) ?? errnoCode(firstAggregated(error));
  const message = errorMessage(error);
  if (phase === 'tcp') {
    return new MuxtunTlsError(TlsErrorCode.CONNECT, `Cannot connect to ${hostPort}: ${describeSystemError(code, message)}`, {
      cause: error,
    });
  }
  if (code !== undefined && X509_VERIFY_CODES.has(code)) {
    const hint =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH'
        ? ' Connect using a name the certificate lists, or set the server name to one of them.'
        : ' Check that the CA bundle is the one that issued the server certificate.';
    return new MuxtunTlsError(
      TlsErrorCode.TLS_UNTRUSTED,
      `The certificate of ${hostPort} failed verification: ${message} (${code}).${hint}`,
      { cause: error },
    );
  }
  const reason = reasonOf(error) ?? message;
  if (code !== undefined && PROTOCOL_VERSION_CODES.has(code)) {
    return new MuxtunTlsError(
      TlsErrorCode.TLS_HANDSHAKE,
      `TLS handshake with ${hostPort} failed: the server does not support TLS 1.3, which muxtun requires (${reason}). ` +
        NOT_MUXTUN_HINT(hostPort),
      { cause: error },
    );
  }
  if (code !== undefined && NOT_TLS_CODES.has(code)) {
    return new MuxtunTlsError(
      TlsErrorCode.TLS_HANDSHAKE,
      `TLS handshake with ${hostPort} failed: the server did not answer with TLS (${reason}). ` +
        NOT_MUXTUN_HINT(hostPort),
      { cause: error },
    );
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_SSL_UNEXPECTED_EOF_WHILE_READING') {
    return new MuxtunTlsError(
      TlsErrorCode.TLS_HANDSHAKE,
      `${hostPort} closed the connection ${phase === 'tls' ? 'during the TLS handshake' : 'right after it'} (${message}). ` +
        NOT_MUXTUN_HINT(hostPort),
      { cause: error },
    );
  }
  return new MuxtunTlsError(TlsErrorCode.TLS_HANDSHAKE, `TLS handshake with ${hostPort} failed: ${reason}`, {
    cause: error,
  });
}

/** The timeout error for the step that did not finish. */
export function timeoutError(phase: Phase, hostPort: string, timeoutMs: number): MuxtunTlsError {
  const what =
    phase === 'tcp'
      ? `connecting to ${hostPort} (no TCP connection; is the host reachable and the port open?)`
      : phase === 'tls'
        ? `waiting for the TLS handshake with ${hostPort}: the port accepts connections but does not answer TLS. ` +
          NOT_MUXTUN_HINT(hostPort)
        : `while checking the certificate of ${hostPort}`;
  return new MuxtunTlsError(TlsErrorCode.CONNECT_TIMEOUT, `Timed out after ${timeoutMs} ms ${what}`);
}

function describeSystemError(code: string | undefined, message: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing is listening there; is muxtun serve running on that port?)';
    case 'ENOTFOUND':
      return 'host name not found';
    case 'EAI_AGAIN':
      return 'host name lookup failed temporarily (DNS not reachable?)';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'ECONNRESET':
      return 'connection reset';
    default:
      return message;
  }
}

/** OpenSSL's short reason (`wrong version number`), which Node puts in `reason`. */
function reasonOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'reason' in error) {
    const { reason } = error as { reason: unknown };
    if (typeof reason === 'string' && reason !== '') return reason;
  }
  return undefined;
}

/** With happy eyeballs Node may report an AggregateError whose own `code` is missing. */
function firstAggregated(error: unknown): unknown {
  return error instanceof AggregateError ? error.errors[0] : undefined;
}
