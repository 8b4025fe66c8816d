import { connect, type TLSSocket } from 'node:tls';
import { clientTlsOptions, verifyServer, type ClientTrust } from './client-trust.js';
import { MuxtunTlsError, TlsErrorCode } from './errors.js';
import { formatHostPort } from './host-port.js';
import { errnoCode, errorMessage } from './sys-error.js';

/** Default for {@link ConnectTlsOptions.timeoutMs}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Largest timeout `setTimeout` honours; beyond it Node fires after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Arguments of {@link connectTls}. */
export interface ConnectTlsOptions {
  /** Host name or IP address of the server. */
  host: string;
  /** TCP port, 1-65535. */
  port: number;
  /** How to decide whether the server's certificate is acceptable. */
  trust: ClientTrust;
  /** SNI and, in CA mode, the name checked against the certificate. Default: `host` unless it is an IP. */
  servername?: string;
  /**
   * Limit for everything up to a verified connection: DNS, TCP connect,
   * TLS handshake and the trust check. Default {@link DEFAULT_CONNECT_TIMEOUT_MS}.
   */
  timeoutMs?: number;
}

/** A TLS connection whose server passed the trust check. */
export interface TlsConnection {
  /**
   * The connected socket. {@link connectTls} has removed its own listeners:
   * attach an `'error'` listener right away.
   */
  socket: TLSSocket;
  /** Fingerprint of the server's certificate. */
  fingerprint: string;
  /** `true` when TOFU recorded this server in known_hosts during this call. */
  recorded: boolean;
}

/**
 * Connects to `host:port` over TLS 1.3 and applies the trust check before
 * resolving, so no application data can be written to an unverified server.
 *
 * @throws {@link MuxtunTlsError} (rejects) with code
 *   `ERR_MUXTUN_CONNECT` (refused, unreachable, unknown host),
 *   `ERR_MUXTUN_CONNECT_TIMEOUT`,
 *   `ERR_MUXTUN_TLS_HANDSHAKE` (not a TLS server, no TLS 1.3, dropped),
 *   `ERR_MUXTUN_TLS_UNTRUSTED` (CA mode: chain or host name, with OpenSSL's reason),
 *   `ERR_MUXTUN_FINGERPRINT_MISMATCH` ({@link FingerprintMismatchError}),
 *   `ERR_MUXTUN_HOST_KEY_CHANGED` ({@link HostKeyMismatchError}),
 *   the known_hosts codes, or `ERR_MUXTUN_TLS_CONFIG` for bad arguments
 */
export async function connectTls(options: ConnectTlsOptions): Promise<TlsConnection> {
  const { host, port, trust } = options;
  const hostPort = formatHostPort(host, port);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new MuxtunTlsError(
      TlsErrorCode.TLS_CONFIG,
      `Invalid timeoutMs ${timeoutMs}: expected a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`,
    );
  }
  const tlsOptions = clientTlsOptions(trust, {
    host,
    port,
    ...(options.servername === undefined ? {} : { servername: options.servername }),
  });

  return new Promise<TlsConnection>((resolve, reject) => {
    // Which step failed decides the error code: before 'connect' it is the
    // TCP connection, before 'secureConnect' the handshake, then the check.
    let phase: Phase = 'tcp';
    let settled = false;
    let socket: TLSSocket;
    try {
      socket = connect(tlsOptions);
    } catch (error) {
      reject(
        new MuxtunTlsError(TlsErrorCode.TLS_CONFIG, `Cannot set up TLS to ${hostPort}: ${errorMessage(error)}`, {
          cause: error,
        }),
      );
      return;
    }

    const onConnect = (): void => {
      phase = 'tls';
    };
    const onError = (error: unknown): void => fail(classifyError(error, phase, hostPort));
    const onClose = (): void =>
      fail(
        new MuxtunTlsError(
          TlsErrorCode.TLS_HANDSHAKE,
          `${hostPort} closed the connection ${phase === 'verify' ? 'right after' : 'during'} the TLS handshake. ` +
            NOT_MUXTUN_HINT(hostPort),
        ),
      );
    const onSecureConnect = (): void => {
      phase = 'verify';
      verifyServer(socket, trust, hostPort).then((verified) => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve({ socket, ...verified });
      }, fail);
    };
    const timer = setTimeout(() => fail(timeoutError(phase, hostPort, timeoutMs)), timeoutMs);

    function cleanup(): void {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('secureConnect', onSecureConnect);
    }
    function fail(error: unknown): void {
      if (settled) return;
      settled = true;
      cleanup();
      // The socket is being torn down; anything it still reports is moot,
      // but an 'error' without a listener would crash the process.
      socket.on('error', () => undefined);
      socket.destroy();
      reject(error);
    }

    socket.once('connect', onConnect);
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('secureConnect', onSecureConnect);
  });
}

type Phase = 'tcp' | 'tls' | 'verify';

const NOT_MUXTUN_HINT = (hostPort: string): string =>
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

function classifyError(error: unknown, phase: Phase, hostPort: string): MuxtunTlsError {
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

function timeoutError(phase: Phase, hostPort: string, timeoutMs: number): MuxtunTlsError {
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
