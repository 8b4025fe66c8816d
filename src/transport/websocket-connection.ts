import net from 'node:net';
import tls from 'node:tls';
import { MuxtunTlsError, TlsErrorCode } from '../tls/index.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { describeProxy, type ProxyConfig } from './proxy-url.js';
import { proxyTunnel } from './proxy-tunnel.js';

/**
 * The HTTP connection a WebSocket's upgrade runs on, shared by both modes:
 * made through the proxy when there is one, and its failures put in words.
 */

/** Certificate verification failures of the outer wss:// connection, as Node reports them. */
const CERT_CODE = /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

/** `ws://host/path` as shown in messages (no query: it may hold a secret). */
export function shownUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** The error to fail with when the dial's signal aborts: its reason (the dial's timeout), or a generic one. */
export function abortError(signal: AbortSignal, shown: string, proxy: ProxyConfig | undefined): TransportError {
  if (signal.reason instanceof TransportError) return signal.reason;
  return new TransportError(TransportErrorCode.CONNECT_TIMEOUT, `Timed out opening the WebSocket ${shown}${proxy ? ` through ${describeProxy(proxy)}` : ''}`);
}

/** A failure to open the HTTP connection or to upgrade it: an untrusted wss:// certificate, or ERR_MUXTUN_WEBSOCKET. */
export function classifyWebSocketError(error: Error, shown: string, host: string): Error {
  if (error instanceof TransportError || error instanceof MuxtunTlsError) return error;
  const code = errnoCode(error) ?? '';
  if (CERT_CODE.test(code)) {
    return new MuxtunTlsError(
      TlsErrorCode.TLS_UNTRUSTED,
      `The wss:// certificate of ${host} (the reverse proxy's) failed verification: ${errorMessage(error)} (${code}). ` +
        'It is checked against the system CAs; for a private CA set NODE_EXTRA_CA_CERTS to its PEM file.',
      { cause: error },
    );
  }
  return new TransportError(TransportErrorCode.WEBSOCKET, `Cannot open the WebSocket ${shown}: ${code || errorMessage(error)}`, { cause: error });
}

/** The refusal of an upgrade answered with an HTTP status other than 101. */
export function upgradeRefused(shown: string, statusCode: number | undefined, statusMessage: string | undefined): TransportError {
  const status = `${statusCode ?? '?'} ${statusMessage ?? ''}`.trim();
  return new TransportError(
    TransportErrorCode.WEBSOCKET,
    `${shown} answered the WebSocket upgrade with HTTP ${status}: is the path right, and does the reverse proxy pass WebSocket upgrades to muxtun serve --ws-listen?`,
  );
}

/** `createConnection` for the WebSocket's HTTP request: a tunnel through the proxy, then TLS for wss://. */
export function viaProxy(proxy: ProxyConfig, secure: boolean, signal: AbortSignal) {
  return (options: { host?: string | null; hostname?: string | null; port?: number | string | null; servername?: string }, done: (error: Error | null, socket?: net.Socket) => void): undefined => {
    const host = (options.hostname ?? options.host ?? '').replace(/^\[|\]$/g, '');
    const port = Number(options.port ?? (secure ? 443 : 80));
    proxyTunnel(proxy, host, port, signal).then(
      (socket) => {
        if (!secure) return done(null, socket);
        const tlsSocket = tls.connect({ socket, servername: options.servername ?? (net.isIP(host) ? '' : host), ALPNProtocols: ['http/1.1'] });
        done(null, tlsSocket);
      },
      (error: Error) => done(error),
    );
    return undefined;
  };
}
