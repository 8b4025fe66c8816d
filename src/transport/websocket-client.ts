import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import WebSocket, { type ClientOptions } from 'ws';
import { webSocketByteStream } from './websocket-stream.js';
import { MuxtunTlsError, TlsErrorCode } from '../tls/index.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { describeProxy, type ProxyConfig } from './proxy-url.js';
import { proxyTunnel } from './proxy-tunnel.js';
import { WS_MAX_PAYLOAD_BYTES } from './websocket-limits.js';

/** Certificate verification failures of the outer wss:// connection, as Node reports them. */
const CERT_CODE = /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

/**
 * Opens a WebSocket to `url` (ws:// or wss://, the latter checked against the
 * system CAs and `NODE_EXTRA_CA_CERTS` like any HTTPS client), through
 * `proxy` when given, and resolves with a byte stream over it: binary
 * messages carry the bytes, `ws` pauses the socket when the stream's reader
 * is behind, and a write completes only once its frame is handed to the
 * socket, so neither direction buffers without bound.
 *
 * @throws {@link TransportError} `ERR_MUXTUN_WEBSOCKET` (unreachable, upgrade refused),
 *   the proxy codes, or {@link MuxtunTlsError} `ERR_MUXTUN_TLS_UNTRUSTED` (the wss:// certificate)
 */
export function dialWebSocket(url: URL, proxy: ProxyConfig | undefined, signal: AbortSignal): Promise<Duplex> {
  const shown = `${url.protocol}//${url.host}${url.pathname}`;
  const secure = url.protocol === 'wss:';
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: WS_MAX_PAYLOAD_BYTES,
      followRedirects: false,
      // An all-zero mask: ws then skips masking here and unmasking at the
      // server (a pass over every byte each side). Masking keeps a
      // browser script from choosing the bytes a proxy sees (RFC 6455 10.3);
      // ours are TLS records, which no one outside the two ends chooses.
      generateMask: zeroMask,
      // Node's ClientRequest takes an asynchronous createConnection (the socket
      // comes through the callback); @types/ws only declares the synchronous form.
      ...(proxy ? { createConnection: viaProxy(proxy, secure, signal) as unknown as ClientOptions['createConnection'] } : {}),
    });
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      reject(error);
    };
    const onAbort = (): void =>
      fail(signal.reason instanceof TransportError ? signal.reason : new TransportError(TransportErrorCode.CONNECT_TIMEOUT, `Timed out opening the WebSocket ${shown}${proxy ? ` through ${describeProxy(proxy)}` : ''}`));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    ws.once('unexpected-response', (_request, response) => {
      const status = `${response.statusCode ?? '?'} ${response.statusMessage ?? ''}`.trim();
      response.resume();
      fail(new TransportError(TransportErrorCode.WEBSOCKET, `${shown} answered the WebSocket upgrade with HTTP ${status}: is the path right, and does the reverse proxy pass WebSocket upgrades to muxtun serve --ws-listen?`));
    });
    ws.on('error', (error) => fail(classifyWebSocketError(error, shown, url.host)));
    // The socket the WebSocket runs on (TLS for wss://), for the stream to cork.
    let socket: net.Socket | undefined;
    ws.once('upgrade', (response) => (socket = response.socket));
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      resolve(webSocketByteStream(ws, socket!, { masked: true }));
    });
  });
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

function classifyWebSocketError(error: Error, shown: string, host: string): Error {
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

/** `createConnection` for the WebSocket's HTTP request: a tunnel through the proxy, then TLS for wss://. */
function viaProxy(proxy: ProxyConfig, secure: boolean, signal: AbortSignal) {
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
