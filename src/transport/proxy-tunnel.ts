import type net from 'node:net';
import { httpConnect } from './http-connect.js';
import type { ProxyConfig } from './proxy-url.js';
import { socksConnect } from './socks.js';

/** A TCP connection to `host:port` through `proxy`, whichever kind it is. */
export function proxyTunnel(proxy: ProxyConfig, host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return proxy.protocol === 'http' ? httpConnect(proxy, host, port, signal) : socksConnect(proxy, host, port, signal);
}
