/**
 * In-process TunnelServer/TunnelClient with real sockets, a logger that keeps
 * what it is told, and a hand-driven client speaking the tunnel protocol over
 * a raw engine session or raw muxado frames over TLS. Everything started here
 * is stopped with the current scope (see scope.ts).
 */
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import tls from 'node:tls';
import { FrameDecoder } from '../../src/muxado/decoder.js';
import type { Frame } from '../../src/muxado/frame.js';
import { client as muxadoClient, type Session, type SessionOptions, type Stream } from '../../src/muxado/index.js';
import { FrameType } from '../../src/muxado/constants.js';
import { loadOrCreateServerCertificate } from '../../src/state/index.js';
import { TunnelClient, TunnelServer, type ForwardSpec, type ServerLimits, type ServerPolicy, type TunnelClientEvents, type TunnelClientOptions, type TunnelLogger } from '../../src/tunnel/index.js';
import { tempDir } from './fs.js';
import { currentScope } from './scope.js';
import { within } from './wait.js';

/** Runs `stop` when the current scope closes, ignoring its failure (the thing may be gone already). */
function stopLater(stop: () => Promise<unknown>): void {
  currentScope().add(() => stop().catch(() => undefined));
}

export interface Entry {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

/** A TunnelLogger that keeps every entry (children's bindings merged into fields). */
export class RecordingLogger implements TunnelLogger {
  constructor(
    readonly entries: Entry[] = [],
    readonly bindings: Record<string, unknown> = {},
  ) {}
  debug(fields: object, msg: string): void {
    this.entries.push({ level: 'debug', msg, fields: { ...this.bindings, ...fields } });
  }
  info(fields: object, msg: string): void {
    this.entries.push({ level: 'info', msg, fields: { ...this.bindings, ...fields } });
  }
  warn(fields: object, msg: string): void {
    this.entries.push({ level: 'warn', msg, fields: { ...this.bindings, ...fields } });
  }
  error(fields: object, msg: string): void {
    this.entries.push({ level: 'error', msg, fields: { ...this.bindings, ...fields } });
  }
  child(bindings: Record<string, unknown>): TunnelLogger {
    return new RecordingLogger(this.entries, { ...this.bindings, ...bindings });
  }
  has(text: string): boolean {
    return this.entries.some((e) => e.msg.includes(text));
  }
}

let certificate: Promise<{ cert: string; key: string; fingerprint: string }> | null = null;
/** One self-signed identity per test file (read into memory: its temp dir goes with the test that made it). */
export function testCertificate(): Promise<{ cert: string; key: string; fingerprint: string }> {
  certificate ??= tempDir('muxtun-identity-').then((dir) => loadOrCreateServerCertificate(dir));
  return certificate;
}

export interface InProcessServer {
  server: TunnelServer;
  port: number;
  token: string;
  fingerprint: string;
  logger: RecordingLogger;
}

/** A TunnelServer on 127.0.0.1 and a free port, stopped after the test. */
export async function startTunnelServer(options: { limits?: Partial<ServerLimits>; policy?: ServerPolicy; session?: SessionOptions; token?: string } = {}): Promise<InProcessServer> {
  const material = await testCertificate();
  const logger = new RecordingLogger();
  const token = options.token ?? `tok-${randomUUID()}`;
  const server = new TunnelServer({
    host: '127.0.0.1',
    port: 0,
    tls: material,
    token,
    logger,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.policy ? { policy: options.policy } : {}),
    ...(options.session ? { session: options.session } : {}),
  });
  const address = await server.listen();
  stopLater(() => server.stop(0));
  return { server, port: address.port, token, fingerprint: material.fingerprint, logger };
}

type ReadyInfo = TunnelClientEvents['ready'][0];

export const forward = (bindPort: number, targetPort: number, bindHost = '127.0.0.1'): ForwardSpec => ({ bindHost, bindPort, targetHost: '127.0.0.1', targetPort });

/** A TunnelClient to `server`, running until the test ends; resolves once the first session is ready. */
export async function startTunnelClient(
  server: InProcessServer,
  options: Partial<TunnelClientOptions> = {},
): Promise<{ client: TunnelClient; logger: RecordingLogger; running: Promise<void>; ready: ReadyInfo }> {
  const logger = new RecordingLogger();
  const client = new TunnelClient({
    host: '127.0.0.1',
    port: server.port,
    token: server.token,
    trust: { kind: 'fingerprint', fingerprint: server.fingerprint },
    local: [],
    remote: [],
    logger,
    ...options,
  });
  const ready = once(client, 'ready') as Promise<TunnelClientEvents['ready']>;
  const running = client.run();
  running.catch(() => undefined);
  stopLater(() => client.stop(0));
  const [info] = await within(Promise.race([ready, running.then(() => Promise.reject(new Error('client stopped before ready')))]), 15_000, 'the tunnel client to be ready');
  return { client, logger, running, ready: info };
}

// ---- the tunnel protocol by hand ----

/** A TLS connection to a server, trusting anything (tests only). Destroyed after the test. */
export async function tlsTo(port: number, options: tls.ConnectionOptions & { localAddress?: string } = {}): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3', ...options });
  socket.on('error', () => {});
  stopLater(async () => socket.destroy());
  await within(once(socket, 'secureConnect'), 5_000, `a TLS connection to port ${port}`);
  return socket;
}

/** Encodes a control message: u32 length, then JSON (or the given bytes as they are). */
export function controlMessage(body: object | Buffer): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body), 'utf8');
  const out = Buffer.alloc(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

/** Reads length-prefixed JSON control messages from a stream as they arrive. */
export class ControlReader {
  readonly messages: Array<Record<string, unknown>> = [];
  #pending = Buffer.alloc(0);
  readonly #waiters = new Set<() => void>();
  ended = false;

  constructor(readonly stream: Stream) {
    stream.on('data', (chunk: Buffer) => {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      while (this.#pending.length >= 4) {
        const length = this.#pending.readUInt32BE(0);
        if (this.#pending.length < 4 + length) break;
        this.messages.push(JSON.parse(this.#pending.subarray(4, 4 + length).toString('utf8')) as Record<string, unknown>);
        this.#pending = this.#pending.subarray(4 + length);
      }
      this.#wake();
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      this.ended = true;
      this.#wake();
    });
  }

  /** The first message (seen or to come) of this type. */
  next(type: string, timeoutMs = 5_000): Promise<Record<string, unknown>> {
    return within(
      new Promise((resolve, reject) => {
        const check = (): void => {
          const found = this.messages.find((m) => m.type === type);
          if (found) {
            this.#waiters.delete(check);
            resolve(found);
          } else if (this.ended) {
            this.#waiters.delete(check);
            reject(new Error(`control stream ended before a "${type}" message; got ${JSON.stringify(this.messages)}`));
          }
        };
        this.#waiters.add(check);
        check();
      }),
      timeoutMs,
      `a "${type}" control message (got ${JSON.stringify(this.messages)})`,
    );
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** An engine client session over TLS to `port`, with no heartbeat of its own. */
export async function rawSession(port: number, options: { localAddress?: string } = {}): Promise<{ session: Session; socket: tls.TLSSocket }> {
  const socket = await tlsTo(port, options.localAddress ? { localAddress: options.localAddress } : {});
  const session = muxadoClient(socket, { heartbeat: false });
  stopLater(async () => session.close());
  return { session, socket };
}

/** Opens the control stream and sends `hello` (or any first bytes); returns the reader of the server's answers. */
export function sendHello(session: Session, hello: object | Buffer): { control: Stream; reader: ControlReader } {
  const control = session.open({ type: 1 });
  control.on('error', () => {});
  const reader = new ControlReader(control);
  control.write(controlMessage(hello));
  return { control, reader };
}

/** A session that authenticated with a correct hello and got its welcome. */
export async function authenticatedSession(server: { port: number; token: string }, options: { localAddress?: string } = {}): Promise<{ session: Session; socket: tls.TLSSocket; control: Stream; reader: ControlReader }> {
  const { session, socket } = await rawSession(server.port, options);
  const { control, reader } = sendHello(session, { type: 'hello', version: 1, token: server.token, clientId: randomUUID() });
  await reader.next('welcome');
  return { session, socket, control, reader };
}

/** How a stream ended: its reset code, 'end' or 'timeout'. */
export function streamEnd(stream: Stream, timeoutMs = 5_000): Promise<{ reset?: number; end?: true; error?: string; timeout?: true }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
    stream.resume();
    stream.on('error', (error: Error & { errorCode?: number; code?: string }) => {
      clearTimeout(timer);
      if (error.code === 'ERR_MUXADO_STREAM_RESET') resolve({ reset: error.errorCode ?? -1 });
      else resolve({ error: `${error.code}: ${error.message}` });
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ end: true });
    });
  });
}

/** Raw muxado bytes over TLS: writes anything, decodes what the server sends, notes when it closes. */
export class RawWire {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  decodeError: Error | null = null;
  readonly #decoder: FrameDecoder;

  constructor(readonly socket: tls.TLSSocket) {
    this.#decoder = new FrameDecoder({
      onSyn: (streamId, fin, priority, streamType) => this.frames.push({ type: FrameType.SYN, streamId, fin, ...(priority !== undefined ? { priority } : {}), ...(streamType !== undefined ? { streamType } : {}) }),
      onRst: (streamId, errorCode) => this.frames.push({ type: FrameType.RST, streamId, errorCode }),
      onData: (streamId, data, fin) => this.frames.push({ type: FrameType.DATA, streamId, fin, data: Buffer.from(data) }),
      onWndInc: (streamId, increment) => this.frames.push({ type: FrameType.WNDINC, streamId, increment }),
      onGoAway: (lastStreamId, errorCode, debug) => this.frames.push({ type: FrameType.GOAWAY, lastStreamId, errorCode, debug: Buffer.from(debug) }),
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.decodeError) return;
      try {
        this.#decoder.push(chunk);
      } catch (error) {
        this.decodeError = error as Error;
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async to(port: number, localAddress?: string): Promise<RawWire> {
    return new RawWire(await tlsTo(port, localAddress ? { localAddress } : {}));
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  goAway(): Extract<Frame, { type: 6 }> | undefined {
    return this.frames.find((f): f is Extract<Frame, { type: 6 }> => f.type === FrameType.GOAWAY);
  }
}
