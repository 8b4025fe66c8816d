/** Loopback TCP helpers: targets (echo, sink), free ports, round trips, resets. */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach } from 'vitest';
import { within } from './process.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Destroys these after the current test. */
export function track<T extends { destroy(): unknown } | net.Server>(thing: T): T {
  cleanups.push(() => {
    if (thing instanceof net.Server) thing.close();
    else thing.destroy();
  });
  return thing;
}

/**
 * A port that was free a moment ago, for flags that take no 0 (-L) or must
 * stay the same across restarts. Picked below the kernel's ephemeral range
 * (32768+) so outgoing connections of parallel tests cannot take it meanwhile.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error('no free port found in 20000-32000');
}

export interface Target {
  server: net.Server;
  port: number;
  /** Sockets it accepted, in order. */
  sockets: net.Socket[];
}

async function listen(server: net.Server): Promise<Target> {
  const sockets: net.Socket[] = [];
  server.on('connection', (socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(server, 'listening');
  track(server);
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

/** Echoes every byte and half-close. */
export function echoServer(): Promise<Target> {
  return listen(net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket)));
}

/** Accepts and never reads a byte. */
export function sinkServer(): Promise<Target> {
  return listen(net.createServer({ pauseOnConnect: true }));
}

/** Connects to 127.0.0.1:port (optionally from `localAddress`). */
export async function dial(port: number, localAddress?: string): Promise<net.Socket> {
  const socket = track(net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) }));
  socket.on('error', () => {});
  await within(once(socket, 'connect'), 5_000, `a TCP connection to 127.0.0.1:${port}`);
  return socket;
}

/** Sends `payload` on a new connection, half-closes, and resolves with what came back before the peer's FIN. */
export async function roundTrip(port: number, payload: Buffer = randomBytes(1024), timeoutMs = 10_000): Promise<Buffer> {
  const socket = await dial(port);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('close', () => reject(new Error(`connection to port ${port} closed before its end (${chunks.length} chunks read)`)));
  });
  socket.end(payload);
  await within(ended, timeoutMs, `the echo of ${payload.length} bytes through port ${port}`);
  socket.destroy();
  return Buffer.concat(chunks);
}

/** A round trip through `port` that must echo exactly what was sent. */
export async function expectEcho(port: number, size = 4096): Promise<void> {
  const payload = randomBytes(size);
  const back = await roundTrip(port, payload);
  if (!back.equals(payload)) throw new Error(`echo through port ${port} returned ${back.length} bytes that differ from the ${size} sent`);
}

/** Writes on an open connection and waits for the same bytes to come back (an echo target behind it). */
export async function echoOn(socket: net.Socket, size = 1024, timeoutMs = 5_000): Promise<void> {
  const payload = randomBytes(size);
  const got: Buffer[] = [];
  let length = 0;
  const done = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      got.push(chunk);
      length += chunk.length;
      if (length >= size) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`connection closed after echoing ${length} of ${size} bytes`)));
  });
  socket.write(payload);
  await within(done, timeoutMs, `an echo of ${size} bytes on an open connection`);
  if (!Buffer.concat(got).subarray(0, size).equals(payload)) throw new Error('echo on an open connection returned other bytes');
}

/**
 * How a connection ended: 'reset' (ECONNRESET), 'end' (FIN, then closed) or
 * 'timeout' if it did neither within `timeoutMs`. Reads and drops data meanwhile.
 */
export async function connectionEnd(socket: net.Socket, timeoutMs: number): Promise<'reset' | 'end' | 'timeout'> {
  if (socket.destroyed) return (socket.errored as NodeJS.ErrnoException | null)?.code === 'ECONNRESET' ? 'reset' : 'end';
  socket.resume();
  return new Promise((resolve) => {
    let sawEnd = false;
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    socket.on('end', () => {
      sawEnd = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === 'ECONNRESET' ? 'reset' : 'end');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(sawEnd ? 'end' : 'reset');
    });
  });
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * A TCP proxy to 127.0.0.1:`targetPort` that can go silent: `blackhole()`
 * stops forwarding on every connection it has, in both directions, without
 * closing anything — a network path that died without a FIN or RST.
 * Connections made afterwards are forwarded normally.
 */
export async function blackholeProxy(targetPort: number): Promise<{ port: number; blackhole: () => number }> {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  const server = track(
    net.createServer((inbound) => {
      const outbound = track(net.connect(targetPort, '127.0.0.1'));
      track(inbound);
      inbound.on('error', () => {});
      outbound.on('error', () => {});
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      pairs.push([inbound, outbound]);
    }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    blackhole: () => {
      const silenced = pairs.splice(0);
      for (const [a, b] of silenced) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
        // Whatever still arrives goes nowhere, and no end is passed on.
        a.removeAllListeners('end');
        b.removeAllListeners('end');
      }
      return silenced.length;
    },
  };
}
