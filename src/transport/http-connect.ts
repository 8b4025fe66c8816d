import net from 'node:net';
import { errnoCode, errorMessage } from '../util/errors.js';
import { formatHostPort } from '../util/host-port.js';
import { TransportError, TransportErrorCode } from './errors.js';
import { describeProxy, type ProxyConfig } from './proxy-url.js';

/** Largest proxy answer header read before giving up: a CONNECT reply is a few hundred bytes. */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

/**
 * Opens a TCP tunnel to `host:port` through an HTTP proxy (CONNECT, RFC 9110
 * 9.3.6), with Basic credentials when the proxy URL has them. Resolves with
 * the socket to the proxy, positioned after the proxy's answer (bytes that
 * arrived with it are unshifted back).
 *
 * @throws {@link TransportError} `ERR_MUXTUN_PROXY_UNREACHABLE`, `ERR_MUXTUN_PROXY_AUTH` (407),
 *   `ERR_MUXTUN_PROXY_REFUSED` (any other status, with the status line)
 */
export function httpConnect(proxy: ProxyConfig, host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  const proxyName = describeProxy(proxy);
  const target = formatHostPort(host, port);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.host, port: proxy.port });
    let head = Buffer.alloc(0);
    let settled = false;
    const finish = (error: TransportError | undefined): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error) {
        socket.on('error', () => undefined);
        socket.destroy();
        reject(error);
      } else {
        resolve(socket);
      }
    };
    const onAbort = (): void => finish(signal.reason instanceof TransportError ? signal.reason : new TransportError(TransportErrorCode.CONNECT_TIMEOUT, `Timed out waiting for the proxy ${proxyName}`));
    const onError = (error: Error): void =>
      finish(new TransportError(TransportErrorCode.PROXY_UNREACHABLE, `Cannot reach the proxy ${proxyName}: ${errnoCode(error) ?? errorMessage(error)}`, { cause: error }));
    const onClose = (): void => finish(new TransportError(TransportErrorCode.PROXY_UNREACHABLE, `The proxy ${proxyName} closed the connection before answering CONNECT ${target}`));
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_HEAD_BYTES) {
          finish(new TransportError(TransportErrorCode.PROXY_REFUSED, `The proxy ${proxyName} answered CONNECT with more than ${MAX_RESPONSE_HEAD_BYTES} bytes of header: is it an HTTP proxy?`));
        }
        return;
      }
      const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
      const status = /^HTTP\/1\.[01] (\d{3})\b/.exec(statusLine)?.[1];
      if (status === undefined) {
        finish(new TransportError(TransportErrorCode.PROXY_REFUSED, `The proxy ${proxyName} answered CONNECT with something that is not HTTP ("${statusLine}"): is it an HTTP proxy?`));
      } else if (status === '407' || status === '401') {
        // 407 is the standard answer; some proxies (tinyproxy 1.11) say 401.
        const why = proxy.username === undefined ? 'it wants credentials: give them in the proxy URL (http://user:pass@host:port)' : 'it refused the user name and password given';
        finish(new TransportError(TransportErrorCode.PROXY_AUTH, `The proxy ${proxyName} requires authentication ("${statusLine}"): ${why}`));
      } else if (!status.startsWith('2')) {
        finish(new TransportError(TransportErrorCode.PROXY_REFUSED, `The proxy ${proxyName} refused CONNECT ${target}: "${statusLine}"`));
      } else {
        const rest = head.subarray(end + 4);
        // Anything that came after the answer goes back for the next reader
        // (paused, so it is not emitted to no one before that reader listens).
        if (rest.length > 0) {
          socket.pause();
          socket.unshift(rest);
        }
        finish(undefined);
      }
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('connect', () => {
      const auth =
        proxy.username === undefined ? '' : `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}\r\n`;
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
      socket.on('data', onData);
    });
  });
}
