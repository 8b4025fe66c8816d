import { connect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { clientTlsOptions, verifyServer, type ClientTrust } from './client-trust.js';
import { NOT_MUXTUN_HINT, classifyError, timeoutError, type Phase } from './connect-errors.js';
import { InvalidArgumentError } from '../errors.js';
import { MuxtunTlsError, TlsErrorCode } from './errors.js';
import { formatHostPort } from '../util/host-port.js';
import { errorMessage } from '../util/errors.js';

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
  /**
   * A byte stream already open to the server (through a proxy, or a
   * WebSocket) to run TLS over instead of a new TCP connection to
   * `host:port`, which then only name the server (SNI, host check,
   * known_hosts). On failure it is destroyed with the TLS socket.
   */
  socket?: Duplex;
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
  /** The server certificate's notAfter (X509Certificate.validTo); pinning and TOFU accept expired ones. */
  validTo: string;
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
 *   the known_hosts codes, `ERR_MUXTUN_INVALID_ARGUMENT` for bad arguments, or
 *   `ERR_MUXTUN_TLS_CONFIG` when Node cannot set up TLS with them
 */
export async function connectTls(options: ConnectTlsOptions): Promise<TlsConnection> {
  const { host, port, trust } = options;
  const hostPort = formatHostPort(host, port);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new InvalidArgumentError(`Invalid timeoutMs ${timeoutMs}: expected a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
  }
  const tlsOptions = clientTlsOptions(trust, {
    host,
    port,
    ...(options.servername === undefined ? {} : { servername: options.servername }),
  });
  const preconnected = options.socket;

  return new Promise<TlsConnection>((resolve, reject) => {
    // Which step failed decides the error code: before 'connect' it is the
    // TCP connection, before 'secureConnect' the handshake, then the check.
    let phase: Phase = preconnected ? 'tls' : 'tcp';
    let settled = false;
    let socket: TLSSocket;
    try {
      socket = connect(preconnected ? { ...tlsOptions, socket: preconnected } : tlsOptions);
    } catch (error) {
      preconnected?.destroy();
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
      preconnected?.destroy();
      reject(error);
    }

    socket.once('connect', onConnect);
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('secureConnect', onSecureConnect);
  });
}
