import type { Duplex } from 'node:stream';
import { describeProxy } from './proxy-url.js';
import type { ResolvedTransport } from './endpoint.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { proxyTunnel } from './proxy-tunnel.js';
import { dialWebSocket } from './websocket-client.js';

/**
 * Opens the byte stream the server's TLS runs over: a tunnel through the
 * proxy, or a WebSocket (itself through the proxy when there is one).
 * Resolves `undefined` for a direct TCP connection, which the TLS layer
 * makes itself (it sorts TCP failures from TLS ones).
 *
 * @throws {@link TransportError} (see its codes), or `ERR_MUXTUN_TLS_UNTRUSTED` for a wss:// certificate
 */
export async function dialTransport(transport: ResolvedTransport, timeoutMs: number): Promise<Duplex | undefined> {
  const { endpoint, proxy } = transport;
  if (endpoint.kind === 'tcp' && !proxy) return undefined;
  const controller = new AbortController();
  const what = endpoint.kind === 'tcp' ? `${describeProxy(proxy!)} to ${endpoint.host}:${endpoint.port}` : `the WebSocket ${endpoint.url.protocol}//${endpoint.url.host}`;
  const timer = setTimeout(
    () => controller.abort(new TransportError(TransportErrorCode.CONNECT_TIMEOUT, `Timed out after ${timeoutMs} ms opening ${what}`)),
    timeoutMs,
  );
  try {
    if (endpoint.kind === 'tcp') return await proxyTunnel(proxy!, endpoint.host, endpoint.port, controller.signal);
    return await dialWebSocket(endpoint.url, proxy, controller.signal, transport.wsMode);
  } finally {
    clearTimeout(timer);
  }
}
