import type net from 'node:net';
import { SocksClient, type SocksClientOptions } from 'socks';
import { errorMessage } from '../util/errors.js';
import { formatHostPort } from '../util/host-port.js';
import { lookup } from 'node:dns/promises';
import { TransportError, TransportErrorCode } from './errors.js';
import { describeProxy, type ProxyConfig } from './proxy-url.js';

/** SOCKS5 reply codes (RFC 1928 section 6) by the names the `socks` package reports, in words. */
const SOCKS_REPLIES: Readonly<Record<string, string>> = {
  Failure: 'general SOCKS server failure (reply 1)',
  NotAllowed: "connection not allowed by the proxy's rules (reply 2)",
  NetworkUnreachable: 'network unreachable from the proxy (reply 3)',
  HostUnreachable: 'host unreachable from the proxy (reply 4)',
  ConnectionRefused: 'connection refused by the target (reply 5)',
  TTLExpired: 'TTL expired (reply 6)',
  CommandNotSupported: 'command not supported (reply 7)',
  AddressNotSupported: 'address type not supported (reply 8)',
};

/**
 * Opens a TCP connection to `host:port` through a SOCKS5 proxy (the `socks`
 * package). `socks5://` resolves the name here, `socks5h://` lets the proxy
 * resolve it, as curl does.
 *
 * @throws {@link TransportError} `ERR_MUXTUN_PROXY_UNREACHABLE`, `ERR_MUXTUN_PROXY_AUTH`,
 *   `ERR_MUXTUN_PROXY_SOCKS` (the proxy's reply code in words)
 */
export async function socksConnect(proxy: ProxyConfig, host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  const proxyName = describeProxy(proxy);
  const target = formatHostPort(host, port);
  let targetHost = host;
  if (proxy.protocol === 'socks5') {
    try {
      targetHost = (await lookup(host)).address;
    } catch (error) {
      throw new TransportError(TransportErrorCode.PROXY_SOCKS, `Cannot resolve ${host} for the SOCKS5 proxy ${proxyName} (use socks5h:// to let the proxy resolve it): ${errorMessage(error)}`, { cause: error });
    }
  }
  const options: SocksClientOptions = {
    command: 'connect',
    proxy: {
      host: proxy.host,
      port: proxy.port,
      type: 5,
      ...(proxy.username !== undefined ? { userId: proxy.username, password: proxy.password ?? '' } : {}),
    },
    destination: { host: targetHost, port },
    // The caller's deadline governs; this only keeps the package from giving up first.
    timeout: 600_000,
  };
  const abort = new Promise<never>((_resolve, reject) => {
    const onAbort = (): void => reject(new TransportError(TransportErrorCode.CONNECT_TIMEOUT, `Timed out waiting for the SOCKS5 proxy ${proxyName}`));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  abort.catch(() => undefined);
  const attempt = SocksClient.createConnection(options);
  try {
    const { socket } = await Promise.race([attempt, abort]);
    return socket;
  } catch (error) {
    // If the deadline won, the attempt may still finish: close what it opens.
    attempt.then(({ socket }) => socket.destroy(), () => undefined);
    if (error instanceof TransportError) throw error;
    throw classifySocksError(error, proxyName, target);
  }
}

function classifySocksError(error: unknown, proxyName: string, target: string): TransportError {
  const message = errorMessage(error);
  const reply = /Socks5 proxy rejected connection - (\w+)/.exec(message)?.[1];
  if (reply !== undefined) {
    return new TransportError(TransportErrorCode.PROXY_SOCKS, `The SOCKS5 proxy ${proxyName} could not connect to ${target}: ${SOCKS_REPLIES[reply] ?? reply}`, { cause: error });
  }
  if (/authentication failed|no accepted authentication type/i.test(message)) {
    return new TransportError(TransportErrorCode.PROXY_AUTH, `The SOCKS5 proxy ${proxyName} refused authentication (wrong or missing user name and password in the proxy URL)`, { cause: error });
  }
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN|ECONNRESET|Socket closed/.test(message)) {
    return new TransportError(TransportErrorCode.PROXY_UNREACHABLE, `Cannot reach the SOCKS5 proxy ${proxyName}: ${message}`, { cause: error });
  }
  return new TransportError(TransportErrorCode.PROXY_SOCKS, `The SOCKS5 proxy ${proxyName} failed: ${message}`, { cause: error });
}
