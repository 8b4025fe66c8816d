/**
 * A small tunnel for resume tests: two sides (A the client, B the server)
 * with a muxado session pair over loopback TCP, an ack channel on a control
 * stream, and conns between a local application socket and a target socket.
 * `drop()` kills the transport as a dead link would; `resume()` builds a new
 * session pair and runs the resume exchange through `decideResume()`.
 */
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { afterEach } from 'vitest';
import { within } from '../../support/wait.js';
import { client, server, type Session, type Stream } from '../../../src/muxado/index.js';
import {
  createConnContext,
  decideResume,
  ResumableConn,
  resumeEntries,
  type ConnContext,
  type ConnEnd,
  type ResumeDecision,
  type ResumeMessage,
  type ResumeOptions,
} from '../../../src/tunnel/resume/index.js';

// ---- cleanup: every socket and session a test makes is torn down after it ----

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

// Every wait in these tests is bounded; the resume tests take `within` from here too.
export { within };

/** Two connected loopback TCP sockets, both half-open capable: [dialled, accepted]. */
export async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const listener = net.createServer({ allowHalfOpen: true });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const dialled = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(dialled, 'connect');
  const [accept] = await accepted;
  listener.close();
  cleanups.push(() => {
    dialled.destroy();
    accept.destroy();
  });
  return [dialled, accept];
}

/** What one side of an application connection saw. */
export interface AppRecord {
  bytes: number;
  /** SHA-256 of everything read so far. */
  sha256(): string;
  chunks: Buffer[];
  ends: number;
  errors: Error[];
  closed: Promise<void>;
  ended: Promise<void>;
}

/** Records what `socket` reads (bytes kept only when `keep`), its EOFs and errors. */
export function record(socket: net.Socket, keep = true): AppRecord {
  const hash = createHash('sha256');
  const rec: AppRecord = {
    bytes: 0,
    sha256: () => hash.copy().digest('hex'),
    chunks: [],
    ends: 0,
    errors: [],
    closed: Promise.resolve(),
    ended: Promise.resolve(),
  };
  socket.on('data', (chunk: Buffer) => {
    rec.bytes += chunk.length;
    hash.update(chunk);
    if (keep) rec.chunks.push(chunk);
  });
  rec.ended = new Promise((resolve) => socket.on('end', () => {
    rec.ends++;
    resolve();
  }));
  socket.on('error', (error) => rec.errors.push(error));
  rec.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  return rec;
}

/** Writes `data` to `socket` in chunks, honouring backpressure, then ends it if asked. */
export async function writeAll(socket: net.Socket, data: Buffer, end = true, chunkSize = 64 * 1024): Promise<void> {
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    if (!socket.write(data.subarray(offset, offset + chunkSize))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = (): void => {
          socket.off('drain', onDrain);
          reject(new Error('the socket closed while writing'));
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    }
  }
  if (end) socket.end();
}

interface Link {
  client: Session;
  server: Session;
  transports: [net.Socket, net.Socket];
  acks: [AckChannel, AckChannel];
}

/**
 * Acks over a muxado stream: 13-byte records (u32 id, u32 high and low
 * halves of receivedBytes, u8 fin). Batched as the integration would be:
 * flushed at the end of the loop turn, at once past `flushBytes` or on a FIN.
 * Emits 'ack' after applying each one.
 */
export class AckChannel extends EventEmitter<{ ack: [id: number] }> {
  readonly #stream: Stream;
  readonly #conns: Map<number, ResumableConn>;
  readonly #dirty = new Set<ResumableConn>();
  readonly #flushBytes: number;
  #pending = 0;
  #scheduled: NodeJS.Immediate | null = null;
  #partial: Buffer = Buffer.alloc(0);
  errors: Error[] = [];

  constructor(stream: Stream, conns: Map<number, ResumableConn>, flushBytes = 64 * 1024) {
    super();
    this.#stream = stream;
    this.#conns = conns;
    this.#flushBytes = flushBytes;
    stream.on('error', () => {});
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  received(conn: ResumableConn, bytes: number): void {
    this.#dirty.add(conn);
    this.#pending += bytes;
    if (this.#pending >= this.#flushBytes || bytes === 0) this.flush();
    else this.#scheduled ??= setImmediate(() => this.flush());
  }

  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    this.#pending = 0;
    if (this.#stream.destroyed) {
      this.#dirty.clear();
      return;
    }
    const records: Buffer[] = [];
    for (const conn of this.#dirty) {
      const ack = conn.takeAck();
      if (!ack) continue;
      const record = Buffer.alloc(13);
      record.writeUInt32BE(conn.id, 0);
      record.writeUInt32BE(Math.floor(ack.bytes / 2 ** 32), 4);
      record.writeUInt32BE(ack.bytes % 2 ** 32, 8);
      record[12] = ack.fin ? 1 : 0;
      records.push(record);
    }
    this.#dirty.clear();
    if (records.length > 0) this.#stream.write(Buffer.concat(records));
  }

  close(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    this.#dirty.clear();
  }

  #onData(chunk: Buffer): void {
    let data = this.#partial.length > 0 ? Buffer.concat([this.#partial, chunk]) : chunk;
    while (data.length >= 13) {
      const id = data.readUInt32BE(0);
      const bytes = data.readUInt32BE(4) * 2 ** 32 + data.readUInt32BE(8);
      const fin = data[12] === 1;
      data = data.subarray(13);
      try {
        this.#conns.get(id)?.ack(bytes, fin);
      } catch (error) {
        this.errors.push(error as Error);
      }
      this.emit('ack', id);
    }
    this.#partial = Buffer.from(data);
  }
}

export interface ConnPair {
  id: number;
  a: ResumableConn;
  /** Set once B knows the conn (at once, or when a conn opened while the link was down is reopened). */
  b: ResumableConn | null;
  /** The application's socket, connected to A's local socket. */
  app: net.Socket;
  /** The socket A's conn reads and writes. */
  aLocal: net.Socket;
  /** The target's socket, connected to B's local socket (null until B knows the conn). */
  target: net.Socket | null;
  bLocal: net.Socket | null;
  aEnd: Promise<ConnEnd>;
  /** Settles when B's conn ends; resolves to null if B never had one. */
  bEnd: Promise<ConnEnd>;
}

/** A conn both sides hold. */
export type OpenPair = ConnPair & { b: ResumableConn; target: net.Socket; bLocal: net.Socket };

/** A resumable tunnel between side A (client) and side B (server), in one process. */
export class Tunnel {
  readonly ctxA: ConnContext;
  readonly ctxB: ConnContext;
  readonly connsA = new Map<number, ResumableConn>();
  readonly connsB = new Map<number, ResumableConn>();
  readonly detached: ResumableConn[] = [];
  readonly pairs = new Map<number, ConnPair>();
  /** Called on every chunk either side receives: tests schedule drops from here. */
  onReceived: ((conn: ResumableConn, bytes: number) => void) | null = null;
  link: Link | null = null;
  drops = 0;
  readonly #ends = new Map<ResumableConn, (end: ConnEnd) => void>();
  readonly #bEnds = new Map<number, (end: ConnEnd) => void>();
  #nextId = 1;
  // The highest conn id of the peer's parity each side has seen: B sees A's odd ids, A sees none.
  #highestSeenByB = 0;
  readonly #highestSeenByA = 0;

  constructor(options: ResumeOptions = {}, readonly ackFlushBytes = 64 * 1024) {
    const hooks = (side: 'a' | 'b') => ({
      onReceived: (conn: ResumableConn, bytes: number) => {
        this.link?.acks[side === 'a' ? 0 : 1].received(conn, bytes);
        this.onReceived?.(conn, bytes);
      },
      onDetached: (conn: ResumableConn) => {
        this.detached.push(conn);
      },
      onComplete: (conn: ResumableConn, end: ConnEnd) => {
        (side === 'a' ? this.connsA : this.connsB).delete(conn.id);
        this.#ends.get(conn)?.(end);
      },
    });
    this.ctxA = createConnContext(options, hooks('a'));
    this.ctxB = createConnContext(options, hooks('b'));
  }

  /** A new session pair with its ack channel; the previous one must be gone. */
  async connect(): Promise<Link> {
    const transports = await tcpPair();
    const c = client(transports[0], { heartbeat: false });
    const s = server(transports[1], { heartbeat: false });
    cleanups.push(() => {
      c.close();
      s.close();
    });
    const control = c.open();
    control.write(Buffer.from('ctl!'));
    const accepted = await within(s.accept(), 5_000, 'the control stream');
    await readHeader(accepted);
    const acks: [AckChannel, AckChannel] = [new AckChannel(control, this.connsA, this.ackFlushBytes), new AckChannel(accepted, this.connsB, this.ackFlushBytes)];
    this.link = { client: c, server: s, transports, acks };
    return this.link;
  }

  /** A new conn over the current link: app ↔ A ↔ stream ↔ B ↔ target. */
  async open(): Promise<OpenPair> {
    const pair = await this.openDetached();
    await this.#openOnB(this.link!, pair);
    return pair as OpenPair;
  }

  /** A new conn on A only, as if the app connected while the link is down: it is reopened at resume. */
  async openDetached(): Promise<ConnPair> {
    const [app, aLocal] = await tcpPair();
    const id = this.#nextId;
    this.#nextId += 2;
    const a = new ResumableConn(id, aLocal, this.ctxA);
    this.connsA.set(id, a);
    const aEnd = new Promise<ConnEnd>((resolve) => this.#ends.set(a, resolve));
    const bEnd = new Promise<ConnEnd>((resolve) => this.#bEnds.set(id, resolve));
    const pair: ConnPair = { id, a, b: null, app, aLocal, target: null, bLocal: null, aEnd, bEnd };
    this.pairs.set(id, pair);
    return pair;
  }

  /** Kills the transport as a dead link would: both sessions end, their streams die with SessionClosedError. */
  async drop(): Promise<void> {
    const link = this.link;
    if (!link) return;
    this.link = null;
    this.drops++;
    link.acks[0].close();
    link.acks[1].close();
    // The receiving end first, then the other, in the same turn: nothing queued gets through.
    link.transports[1].destroy();
    link.transports[0].destroy();
    await within(Promise.all([link.client.closed, link.server.closed]), 5_000, 'both sessions to end');
  }

  /** Drops the link if it is up, makes a new one and runs the resume exchange; returns both sides' decisions. */
  async resume(): Promise<{ a: ResumeDecision[]; b: ResumeDecision[] }> {
    await this.drop();
    // Conns whose stream had already closed cleanly hear nothing from the session.
    for (const conn of [...this.connsA.values(), ...this.connsB.values()]) conn.detach();
    const link = await this.connect();
    const fromA: ResumeMessage = { highestSeen: this.#highestSeenByA, conns: resumeEntries(this.connsA.values()) };
    const fromB: ResumeMessage = { highestSeen: this.#highestSeenByB, conns: resumeEntries(this.connsB.values()) };
    const a = decideResume({ isClient: true, conns: this.connsA.values(), highestSeen: this.#highestSeenByA }, fromB);
    const b = decideResume({ isClient: false, conns: this.connsB.values(), highestSeen: this.#highestSeenByB }, fromA);
    const bById = new Map(b.map((d) => [d.id, d]));
    for (const decision of b) {
      const conn = this.connsB.get(decision.id);
      if (decision.action === 'complete') conn!.ack(decision.peer.bytes, decision.peer.fin);
      else if (decision.action === 'abort') conn!.abort(new Error(decision.reason));
    }
    for (const decision of a) {
      const conn = this.connsA.get(decision.id);
      const peerDecision = bById.get(decision.id);
      switch (decision.action) {
        case 'attach': {
          if (peerDecision?.action !== 'attach') throw new Error(`A attaches conn ${decision.id}, B decided ${peerDecision?.action}`);
          const [sa, sb] = await this.#streamFor(link, decision.id);
          conn!.attach(sa, decision.peer);
          this.connsB.get(decision.id)!.attach(sb, peerDecision.peer);
          break;
        }
        case 'reopen':
          if (peerDecision?.action !== 'await-reopen') throw new Error(`A reopens conn ${decision.id}, B decided ${peerDecision?.action}`);
          await this.#openOnB(link, this.pairs.get(decision.id)!);
          break;
        case 'complete':
          conn!.ack(decision.peer.bytes, decision.peer.fin);
          break;
        case 'abort':
          conn!.abort(new Error(decision.reason));
          break;
        case 'unknown':
        case 'await-reopen':
          break;
      }
    }
    return { a, b };
  }

  /** B learns of the conn: it dials the target and both sides attach a stream from byte 0. */
  async #openOnB(link: Link, pair: ConnPair): Promise<void> {
    const [bLocal, target] = await tcpPair();
    const b = new ResumableConn(pair.id, bLocal, this.ctxB);
    this.connsB.set(pair.id, b);
    this.#highestSeenByB = Math.max(this.#highestSeenByB, pair.id);
    this.#ends.set(b, this.#bEnds.get(pair.id)!);
    Object.assign(pair, { b, bLocal, target });
    const [sa, sb] = await this.#streamFor(link, pair.id);
    pair.a.attach(sa, { bytes: 0, fin: false });
    b.attach(sb, { bytes: 0, fin: false });
  }

  async #streamFor(link: Link, id: number): Promise<[Stream, Stream]> {
    const sa = link.client.open();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(id);
    sa.write(header);
    const sb = await within(link.server.accept(), 5_000, `the stream of conn ${id}`);
    const got = await readHeader(sb);
    if (got.readUInt32BE(0) !== id) throw new Error(`stream header says conn ${got.readUInt32BE(0)}, expected ${id}`);
    return [sa, sb];
  }
}

/** Resolves once `predicate` holds, checking after every `event` on `emitter`; bounded. */
export function when(emitter: NodeJS.EventEmitter, event: string, predicate: () => boolean, ms: number, what: string): Promise<void> {
  if (predicate()) return Promise.resolve();
  let listener: (() => void) | undefined;
  return within(
    new Promise<void>((resolve) => {
      listener = () => {
        if (predicate()) resolve();
      };
      emitter.on(event, listener);
    }),
    ms,
    what,
  ).finally(() => emitter.off(event, listener!));
}

/**
 * Resolves once `predicate` holds, checking every few ms; bounded. Only for
 * states no event announces (a socket that stays paused, a queue that fills).
 */
export async function until(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Reads exactly the 4-byte header; the rest stays in the stream for whoever attaches to it. */
async function readHeader(stream: Stream): Promise<Buffer> {
  stream.on('error', () => {});
  for (;;) {
    const header = stream.read(4) as Buffer | null;
    if (header) return header;
    await within(once(stream, 'readable'), 5_000, 'a stream header');
  }
}
