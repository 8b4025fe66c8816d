/**
 * A SOCKS client for the -D and reverse dynamic -R tests: the well-kept
 * `socks` package, the way applications speak SOCKS, plus raw requests for
 * what it will not send (BIND, UDP ASSOCIATE, garbage).
 */
import type net from 'node:net';
import { SocksClient } from 'socks';
import { currentScope, track, type Scope } from './scope.js';

/** Connects through the SOCKS server on 127.0.0.1:`proxyPort` to host:port; rejects with the client's error (its message names the SOCKS5 reply). */
export async function socksConnect(proxyPort: number, host: string, port: number, options: { version?: 4 | 5; timeoutMs?: number; scope?: Scope } = {}): Promise<net.Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: proxyPort, type: options.version ?? 5 },
    command: 'connect',
    destination: { host, port },
    timeout: options.timeoutMs ?? 10_000,
  });
  return track(socket, options.scope ?? currentScope());
}

/** The SOCKS5 reply code's name as the `socks` package puts it in its error ("… - ConnectionRefused"). */
export async function socksRefusal(proxyPort: number, host: string, port: number, version: 4 | 5 = 5): Promise<string> {
  try {
    const socket = await socksConnect(proxyPort, host, port, { version });
    socket.destroy();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`SOCKS${version} CONNECT to ${host}:${port} succeeded, expected a refusal`);
}
