import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * A port that was free a moment ago, for what cannot take port 0 itself
 * (-L listeners, a -R port that must stay the same across a reconnect).
 * Picked below the kernel's ephemeral range: ports in that range are also
 * handed out as source ports of outgoing connections, and with hundreds of
 * connections in flight one of those takes "our" port often enough to flake.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canBind(port)) return port;
  }
  throw new Error('found no free port below the ephemeral range in 50 tries');
}

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low! > 11_000 && high! > low!) return [low!, high!];
  } catch {
    // Not Linux: assume the IANA range.
  }
  return [49_152, 65_535];
}

async function canBind(port: number): Promise<boolean> {
  const server = net.createServer();
  try {
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  } catch {
    return false;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return true;
}

/** A port where nothing listens. */
export const closedPort = freePort;

/** A TCP server on 127.0.0.1:0 that remembers its sockets so close() can end them all. */
export interface TestServer {
  port: number;
  server: net.Server;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

export async function listen(onConnection: (socket: net.Socket) => void): Promise<TestServer> {
  return serveOnLoopback(net.createServer({ allowHalfOpen: true }), onConnection);
}

/** Listens on 127.0.0.1:0 with any server (net, tls, http...), counting and tracking its connections. */
export async function serveOnLoopback(server: net.Server, onConnection?: (socket: net.Socket) => void): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const result: TestServer = {
    port: 0,
    server,
    accepted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket) => {
    result.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection?.(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  result.port = (server.address() as net.AddressInfo).port;
  return result;
}

/** Echoes every byte back and ends its side when the peer ends its own (half-close kept). */
export function echoServer(): Promise<TestServer> {
  return listen((socket) => socket.pipe(socket));
}

/**
 * Both directions at once, each checkable end to end: on connect the server
 * sends sha256(D) and D (random, `size` bytes) while it reads the client's
 * bytes; after the client's FIN it sends sha256 of what it received and
 * ends. See {@link hashExchange} for the client side.
 */
export function hashServer(size: number): Promise<TestServer> {
  return listen((socket) => {
    const data = randomBytes(size);
    socket.write(Buffer.from(sha256(data), 'hex'));
    socket.write(data);
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => hash.update(chunk));
    socket.on('end', () => socket.end(hash.digest()));
  });
}

/**
 * The client side of {@link hashServer}: sends `size` random bytes and a
 * FIN, reads everything, and checks both hashes. Throws on any mismatch.
 */
export async function hashExchange(port: number, size: number, timeoutMs?: number): Promise<void> {
  const sent = randomBytes(size);
  const received = await exchange(port, sent, timeoutMs);
  if (received.length !== 32 + size + 32) throw new Error(`expected ${32 + size + 32} bytes back, got ${received.length}`);
  const serverHash = received.subarray(0, 32).toString('hex');
  const serverData = received.subarray(32, 32 + size);
  if (sha256(serverData) !== serverHash) throw new Error('the server-to-client data does not match its sha256');
  const echoedHash = received.subarray(32 + size).toString('hex');
  if (echoedHash !== sha256(sent)) throw new Error('the server received other bytes than the client sent (sha256 differs)');
}

/** How a TCP conversation ended. */
export interface Conversation {
  received: Buffer;
  /** The peer ended its side in order (FIN). */
  ended: boolean;
  /** The connection failed (for example ECONNRESET), if it did. */
  error?: NodeJS.ErrnoException;
}

/**
 * Connects, writes `data`, ends the write side (unless `end: false`), and
 * collects what comes back until the connection closes.
 */
export async function converse(port: number, data: Buffer | string, options: { end?: boolean; timeoutMs?: number } = {}): Promise<Conversation> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let ended = false;
  let error: NodeJS.ErrnoException | undefined;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => {
    ended = true;
    socket.end();
  });
  socket.on('error', (cause: NodeJS.ErrnoException) => (error = cause));
  // Not events.once: it would reject on the 'error' this function reports.
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(data);
  if (options.end !== false) socket.end();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const timer = setTimeout(() => socket.destroy(new Error(`no close within ${timeoutMs} ms (got ${Buffer.concat(chunks).length} bytes)`)), timeoutMs);
  await closed;
  clearTimeout(timer);
  return { received: Buffer.concat(chunks), ended, ...(error ? { error } : {}) };
}

/** {@link converse}, but any error or a missing FIN throws. */
export async function exchange(port: number, data: Buffer | string, timeoutMs?: number): Promise<Buffer> {
  const result = await converse(port, data, timeoutMs === undefined ? {} : { timeoutMs });
  if (result.error) throw new Error(`connection to 127.0.0.1:${port} failed after ${result.received.length} bytes: ${result.error.message}`);
  if (!result.ended) throw new Error(`connection to 127.0.0.1:${port} closed without a FIN`);
  return result.received;
}

/** A connection to an echo server kept open across several round trips. */
export class EchoClient {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  /** Settles when the peer ended its side (FIN) or the connection closed (RST, destroy). */
  readonly ended: Promise<void>;
  error: NodeJS.ErrnoException | undefined;
  #buffered: Buffer = Buffer.alloc(0);
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffered = Buffer.concat([this.#buffered, chunk]);
      this.#wake?.();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.ended = Promise.race([this.closed, new Promise<void>((resolve) => socket.once('end', () => resolve()))]);
    void this.closed.then(() => this.#wake?.());
  }

  static async connect(port: number): Promise<EchoClient> {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const client = new EchoClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return client;
  }

  /** Sends `data` and resolves with the same number of bytes read back; fails if the connection ends first or after `timeoutMs`. */
  async roundTrip(data: Buffer | string, timeoutMs = 10_000): Promise<Buffer> {
    const payload = Buffer.from(data);
    this.socket.write(payload);
    const deadline = Date.now() + timeoutMs;
    while (this.#buffered.length < payload.length) {
      if (this.socket.destroyed) throw new Error(`the connection closed after ${this.#buffered.length} of ${payload.length} echoed bytes${this.error ? ` (${this.error.message})` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms with ${this.#buffered.length} of ${payload.length} echoed bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    const answer = this.#buffered.subarray(0, payload.length);
    this.#buffered = this.#buffered.subarray(payload.length);
    return answer;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A TCP relay to 127.0.0.1:targetPort that can go silent: after
 * {@link Relay.blackhole} the connections it holds drop every byte without
 * closing (a dead NAT entry, a cable pulled), while new connections are
 * relayed normally.
 */
export interface Relay extends TestServer {
  blackhole(): void;
}

export async function relay(targetPort: number): Promise<Relay> {
  const pairs = new Set<{ silent: boolean; upstream: net.Socket }>();
  const server = await listen((socket) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    const pair = { silent: false, upstream };
    pairs.add(pair);
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => {
      pairs.delete(pair);
      if (!pair.silent) socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => {
      if (!pair.silent) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.silent) socket.write(chunk);
    });
  });
  const close = server.close;
  return {
    ...server,
    blackhole() {
      for (const pair of pairs) pair.silent = true;
    },
    async close() {
      for (const pair of pairs) pair.upstream.destroy();
      await close();
    },
  };
}
