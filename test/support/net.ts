/**
 * Loopback TCP for tests: free ports, servers that serve as targets (echo,
 * sink, hash exchange, TLS echo), clients that check what comes back, a relay
 * whose path can be cut or go silent, and how a connection ended. Every server and
 * socket made here is closed with its scope (see scope.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { freePort } from './ports.js';
import { currentScope, track, type Scope } from './scope.js';
import { within } from './wait.js';

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

// ---- ports ----

/** freePort is in ports.js (plain JavaScript, so scripts/bench uses the same one). */
export { freePort };

/** A port where nothing listens. */
export const closedPort = freePort;

// ---- servers ----

/** One TCP connection a test server accepted. */
export interface ServedConnection {
  /** The raw TCP socket (also for a TLS server: before its handshake). */
  socket: net.Socket;
  /** Resolves when the TCP connection has closed. */
  closed: Promise<void>;
}

/** A server on 127.0.0.1 and a port of the kernel's choice, tracking its connections so close() can end them all. */
export interface TestServer<S extends net.Server = net.Server> {
  server: S;
  port: number;
  /** Every TCP connection accepted, in arrival order (for a TLS server, also those that never finished the handshake). */
  connections: ServedConnection[];
  /** Resolves with the next connection not yet taken by an earlier call, waiting for it if needed. */
  nextConnection(): Promise<ServedConnection>;
  /** Ends every connection and closes the server (done by its scope anyway). */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:0 with any server (net, tls, http...), tracking its
 * connections; `onConnection` gets each raw TCP socket (errors on it are
 * expected in these tests and ignored).
 */
export async function serveOnLoopback<S extends net.Server>(server: S, onConnection?: (socket: net.Socket) => void, scope: Scope = currentScope()): Promise<TestServer<S>> {
  const connections: ServedConnection[] = [];
  const waiters: Array<(connection: ServedConnection) => void> = [];
  let taken = 0;
  const open = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    void closed.then(() => open.delete(socket));
    const connection = { socket, closed };
    connections.push(connection);
    waiters.shift()?.(connection);
    onConnection?.(socket);
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(server, 'listening');
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      server.close(() => resolve());
    }));
  scope.add(close);
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    connections,
    nextConnection: () => {
      const ready = connections[taken];
      taken += 1;
      return ready !== undefined ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
    close,
  };
}

/** A plain TCP server (half-close allowed) running `onConnection` for each connection. */
export function listen(onConnection: (socket: net.Socket) => void, scope?: Scope): Promise<TestServer> {
  return serveOnLoopback(net.createServer({ allowHalfOpen: true }), onConnection, scope);
}

/** Echoes every byte back and ends its side when the peer ends its own (half-close kept). */
export function echoServer(scope?: Scope): Promise<TestServer> {
  return listen((socket) => socket.pipe(socket), scope);
}

/** Accepts and never reads a byte. */
export function sinkServer(scope?: Scope): Promise<TestServer> {
  return serveOnLoopback(net.createServer({ pauseOnConnect: true }), undefined, scope);
}

/**
 * Both directions at once, each checkable end to end: on connect the server
 * sends sha256(D) and D (random, `size` bytes) while it reads the client's
 * bytes; after the client's FIN it sends sha256 of what it received and
 * ends. See {@link hashExchange} for the client side.
 */
export function hashServer(size: number, scope?: Scope): Promise<TestServer> {
  return listen((socket) => {
    const data = randomBytes(size);
    socket.write(Buffer.from(sha256(data), 'hex'));
    socket.write(data);
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => hash.update(chunk));
    socket.on('end', () => socket.end(hash.digest()));
  }, scope);
}

/** A TLS echo server; counts the application bytes it received over all connections (after decryption). */
export async function tlsEchoServer(options: tls.TlsOptions, scope?: Scope): Promise<TestServer<tls.Server> & { appBytes(): number }> {
  let appBytes = 0;
  const server = tls.createServer(options, (socket) => {
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      appBytes += chunk.length;
      socket.write(chunk);
    });
  });
  // Handshake failures on the server side are expected in these tests.
  server.on('tlsClientError', () => {});
  return { ...(await serveOnLoopback(server, undefined, scope)), appBytes: () => appBytes };
}

/**
 * A TCP relay to 127.0.0.1:targetPort standing in for the network path
 * between two peers, which a test can break in the ways a real path breaks:
 *
 * - {@link Relay.cut}: every relayed connection is closed at once, both
 *   sides (a reset by default, or an orderly close), and the path stays
 *   down: new connections are accepted and reset at once, so a peer's
 *   attempts fail, until {@link Relay.restore};
 * - {@link Relay.blackhole}: the connections it holds drop every byte and
 *   every end, in both directions, without closing (a dead NAT entry, a
 *   cable pulled): neither side learns anything, only a heartbeat can
 *   notice. New connections are relayed normally (unless the path is down).
 *
 * A silenced connection stays silent (what it dropped cannot be given
 * back); the scope, or a later cut(), closes it. Relayed connections keep
 * TCP's backpressure (a slow reader slows the writer) and half-closes.
 */
export interface Relay extends TestServer {
  /** Silences every connection relayed so far; returns how many it silenced (not counting those already silent). */
  blackhole(): number;
  /**
   * Closes every relayed connection (silenced ones too) on both sides at
   * once, and refuses new ones until {@link restore}. `how`: 'reset'
   * (RST, ECONNRESET on each side; default) or 'end' (FIN and close).
   * Returns how many connections it closed.
   */
  cut(how?: 'reset' | 'end'): number;
  /** Relays new connections again after {@link cut}. */
  restore(): void;
  /** Whether the path is down (between cut() and restore()). */
  readonly down: boolean;
  /** Connections being relayed now (open and not silenced). */
  relayed(): number;
}

interface RelayedPair {
  downstream: net.Socket;
  upstream: net.Socket;
  silent: boolean;
}

export async function relay(targetPort: number, scope: Scope = currentScope()): Promise<Relay> {
  const pairs = new Set<RelayedPair>();
  let down = false;
  const server = await listen((downstream) => {
    if (down) {
      // Accepted by the kernel before we could say no: reset it at once, as a dead path would fail it.
      downstream.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    upstream.on('error', () => {});
    const pair: RelayedPair = { downstream, upstream, silent: false };
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (!pair.silent && !to.write(chunk)) from.pause();
      });
      to.on('drain', () => {
        if (!pair.silent) from.resume();
      });
      from.on('end', () => {
        if (!pair.silent) to.end();
      });
      // An orderly close was passed on by 'end' (the other side closes once its writes are out);
      // a failed one (a reset, a refused dial) is passed on as a reset. Unless silent.
      from.on('close', (hadError: boolean) => {
        if (hadError && !pair.silent && !to.destroyed) to.resetAndDestroy();
      });
    };
    forward(downstream, upstream);
    forward(upstream, downstream);
    const forget = (): void => {
      if (downstream.destroyed && upstream.destroyed) pairs.delete(pair);
    };
    downstream.on('close', forget);
    upstream.on('close', forget);
  }, scope);
  scope.add(() => {
    for (const pair of pairs) {
      pair.upstream.destroy();
      pair.downstream.destroy();
    }
    pairs.clear();
  });
  return {
    ...server,
    blackhole() {
      let silenced = 0;
      for (const pair of pairs) {
        if (pair.silent) continue;
        silenced++;
        pair.silent = true;
        // Read and drop from now on (a paused socket would keep what it holds for nobody).
        pair.downstream.resume();
        pair.upstream.resume();
      }
      return silenced;
    },
    cut(how = 'reset') {
      down = true;
      const cut = [...pairs];
      pairs.clear();
      for (const pair of cut) {
        // Silent first, so neither side's close is passed on as the other's: each side is closed here, as asked.
        pair.silent = true;
        for (const socket of [pair.downstream, pair.upstream]) {
          if (socket.destroyed) continue;
          if (how === 'reset') {
            socket.resetAndDestroy();
          } else {
            // A FIN now; what arrives after it is read and dropped (closing with unread bytes would send a RST).
            socket.resume();
            socket.end();
            setTimeout(() => socket.destroy(), 2_000).unref();
          }
        }
      }
      return cut.length;
    },
    restore() {
      down = false;
    },
    get down() {
      return down;
    },
    relayed() {
      let count = 0;
      for (const pair of pairs) if (!pair.silent && !pair.downstream.destroyed && !pair.upstream.destroyed) count++;
      return count;
    },
  };
}

// ---- clients ----

/** Connects to 127.0.0.1:port (optionally from `localAddress`); the socket is destroyed with its scope. */
export async function dial(port: number, options: { localAddress?: string; scope?: Scope } = {}): Promise<net.Socket> {
  const socket = track(net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }), options.scope);
  socket.on('error', () => {});
  await within(once(socket, 'connect'), 5_000, `a TCP connection to 127.0.0.1:${port}`);
  return socket;
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

/** {@link converse}, but any error or a missing FIN throws: sends `data` and a FIN, resolves with everything read back. */
export async function exchange(port: number, data: Buffer | string, timeoutMs?: number): Promise<Buffer> {
  const result = await converse(port, data, timeoutMs === undefined ? {} : { timeoutMs });
  if (result.error) throw new Error(`connection to 127.0.0.1:${port} failed after ${result.received.length} bytes: ${result.error.message}`);
  if (!result.ended) throw new Error(`connection to 127.0.0.1:${port} closed without a FIN`);
  return result.received;
}

/** An {@link exchange} through `port` that must echo exactly the `size` random bytes sent. */
export async function expectEcho(port: number, size = 4096): Promise<void> {
  const payload = randomBytes(size);
  const back = await exchange(port, payload);
  if (!back.equals(payload)) throw new Error(`echo through port ${port} returned ${back.length} bytes that differ from the ${size} sent`);
}

/** Writes on an open connection and waits for the same bytes to come back (an echo target behind it). */
export async function echoOn(socket: net.Socket, size = 1024, timeoutMs = 5_000): Promise<void> {
  const payload = randomBytes(size);
  const got: Buffer[] = [];
  let length = 0;
  const done = new Promise<void>((resolve, reject) => {
    const onClose = (): void => reject(new Error(`connection closed after echoing ${length} of ${size} bytes`));
    const onData = (chunk: Buffer): void => {
      got.push(chunk);
      length += chunk.length;
      if (length >= size) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
  socket.write(payload);
  await within(done, timeoutMs, `an echo of ${size} bytes on an open connection`);
  if (!Buffer.concat(got).subarray(0, size).equals(payload)) throw new Error('echo on an open connection returned other bytes');
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

  static async connect(port: number, scope?: Scope): Promise<EchoClient> {
    const socket = track(net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }), scope);
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

/** Two connected TCP sockets on loopback: [the dialling side, the accepting side]. */
export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const dialled = net.connect(port, '127.0.0.1');
  await once(dialled, 'connect');
  const [serverSide] = await accepted;
  listener.close();
  return [dialled, serverSide];
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

/**
 * Completes a TLS handshake with 127.0.0.1:`port` and returns the server
 * certificate's fingerprint as muxtun prints it (`sha256:<hex>`). A finished
 * handshake also proves the server's event loop ran after it printed its
 * readiness lines, so whatever it set up in that same tick (its signal
 * handlers) is in place.
 */
export async function tlsFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  try {
    await once(socket, 'secureConnect');
    return `sha256:${socket.getPeerCertificate().fingerprint256.replaceAll(':', '').toLowerCase()}`;
  } finally {
    socket.destroy();
  }
}

/** What `stream` yields until at least `bytes` have arrived (its 'data' listener is removed then). */
export function readBytes(stream: Duplex, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (data: Buffer): void => {
      parts.push(data);
      got += data.length;
      if (got < bytes) return;
      stream.off('data', onData);
      resolve(Buffer.concat(parts));
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
}
