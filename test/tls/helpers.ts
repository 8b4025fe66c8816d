import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer, type TlsOptions } from 'node:tls';
import { generate } from 'selfsigned';
import { afterEach } from 'vitest';

/** A fresh temp directory per call, removed after the test. */
export function useTempDirs(): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muxtun-tls-'));
    dirs.push(dir);
    return dir;
  };
}

export interface Pem {
  cert: string;
  key: string;
}

const LEAF_EXTENSIONS = (names: string[]) => [
  { name: 'basicConstraints' as const, cA: false },
  { name: 'keyUsage' as const, digitalSignature: true, critical: true },
  { name: 'extKeyUsage' as const, serverAuth: true },
  {
    name: 'subjectAltName' as const,
    altNames: names.map((name) => (/^[\d.]+$|:/.test(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name })),
  },
];

/** A self-signed ECDSA leaf for the given names (default localhost + 127.0.0.1). */
export async function selfSignedPem(names: string[] = ['localhost', '127.0.0.1']): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: LEAF_EXTENSIONS(names),
  });
  return { cert: result.cert, key: result.private };
}

/** A CA certificate and key able to sign leaves. */
export async function caPem(name = 'muxtun test CA'): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: result.cert, key: result.private };
}

/** A leaf for `names` signed by `ca`. */
export async function leafSignedBy(ca: Pem, names: string[] = ['localhost', '127.0.0.1']): Promise<Pem> {
  const result = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { cert: ca.cert, key: ca.key },
    extensions: LEAF_EXTENSIONS(names),
  });
  return { cert: result.cert, key: result.private };
}

/** One TCP connection a test server accepted. */
export interface ServedConnection {
  /** Resolves when the TCP connection has closed. */
  closed: Promise<void>;
}

export interface TestServer<S> {
  server: S;
  port: number;
  /** TCP connections in arrival order (TLS handshake completed or not). */
  connections: ServedConnection[];
  /** Resolves with the next TCP connection not yet taken, waiting for it if needed. */
  nextConnection: () => Promise<ServedConnection>;
  /** Application bytes received, over all connections (after TLS decryption for TLS servers). */
  appBytes: () => number;
}

/** Closes every server (and its open connections) started by the helpers below. */
export function useServers(): {
  tls: (options: TlsOptions) => Promise<TestServer<TlsServer>>;
  tcp: (onSocket: (socket: Socket) => void) => Promise<TestServer<TcpServer>>;
} {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  async function listen<S extends TcpServer>(server: S, isTls: boolean, onSocket: (socket: Socket) => void) {
    const sockets = new Set<Socket>();
    const connections: ServedConnection[] = [];
    const waiters: Array<(connection: ServedConnection) => void> = [];
    let taken = 0;
    let appBytes = 0;
    const countAndServe = (socket: Socket): void => {
      socket.on('data', (chunk: Buffer) => {
        appBytes += chunk.length;
      });
      socket.on('error', () => undefined);
      onSocket(socket);
    };
    // 'connection' is the raw TCP socket, also for a TLS server; it is seen
    // even when the client aborts before the server finishes the handshake.
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      void closed.then(() => sockets.delete(socket));
      const connection = { closed };
      connections.push(connection);
      waiters.shift()?.(connection);
      if (!isTls) countAndServe(socket);
    });
    if (isTls) {
      server.on('secureConnection', countAndServe);
      // Handshake failures on the server side are expected in these tests.
      server.on('tlsClientError', () => undefined);
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const nextConnection = (): Promise<ServedConnection> => {
      const ready = connections[taken];
      taken += 1;
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve) => waiters.push(resolve));
    };
    return {
      server,
      port: (server.address() as AddressInfo).port,
      connections,
      nextConnection,
      appBytes: () => appBytes,
    };
  }

  return {
    /** A TLS echo server on 127.0.0.1. */
    tls: (options) =>
      listen(createTlsServer(options), true, (socket) => {
        socket.on('data', (chunk: Buffer) => socket.write(chunk));
      }),
    /** A plain TCP server on 127.0.0.1 running `onSocket` per connection. */
    tcp: (onSocket) => listen(createTcpServer(), false, onSocket),
  };
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected a rejection, but the promise resolved');
}
