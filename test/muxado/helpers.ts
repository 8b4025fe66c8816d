import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { FrameType, HEARTBEAT_PRIORITY, HEARTBEAT_STREAM_TYPE } from '../../src/muxado/constants.js';
import { FrameDecoder } from '../../src/muxado/decoder.js';
import { encodeFrame, type Frame } from '../../src/muxado/frame.js';
import { client, server, type Session, type SessionOptions } from '../../src/muxado/index.js';
import { socketPair } from '../support/net.js';
import { currentScope } from '../support/scope.js';
import { collectFrames } from './codec-helpers.js';

export { collectFrames };

/** Every socket and session a test makes is torn down after it (with its scope, see test/support/scope.ts). */
function closeAfterTest(sockets: Socket[], sessions: Session[] = []): void {
  currentScope().add(() => {
    for (const session of sessions) session.close();
    for (const socket of sockets) socket.destroy();
  });
}

/** Sessions on both ends of a loopback TCP connection. Heartbeats are off unless asked for. */
export async function sessionPair(
  clientOptions: SessionOptions = {},
  serverOptions: SessionOptions = {},
): Promise<{ client: Session; server: Session; sockets: [Socket, Socket] }> {
  const sockets = await socketPair();
  const c = client(sockets[0], { heartbeat: false, ...clientOptions });
  const s = server(sockets[1], { heartbeat: false, ...serverOptions });
  closeAfterTest(sockets, [c, s]);
  return { client: c, server: s, sockets };
}

/**
 * A session on one end of a loopback connection and a raw peer on the other,
 * which sees every frame the session sends and can send anything at all.
 */
export async function rawPeerOf(
  role: 'client' | 'server',
  options: SessionOptions = {},
): Promise<{ session: Session; peer: RawPeer; transport: Socket }> {
  const [dialled, accepted] = await socketPair();
  const session = role === 'client' ? client(dialled, { heartbeat: false, ...options }) : server(accepted, { heartbeat: false, ...options });
  const peer = new RawPeer(role === 'client' ? accepted : dialled);
  // The raw peer writes frame by frame: without this, Nagle holds each write
  // until the last is acknowledged and a 1 MiB transfer takes most of a second.
  peer.socket.setNoDelay(true);
  closeAfterTest([dialled, accepted], [session]);
  return { session, peer, transport: role === 'client' ? dialled : accepted };
}

/** The raw side of a connection: decodes what it receives with the engine's codec, sends frames as given. */
export class RawPeer {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Settles when the session ends the transport (or it closes). */
  readonly ended: Promise<void>;
  /** A decode failure of what the session sent (a bug in the session). */
  decodeError: Error | null = null;
  readonly #claimed = new Set<Frame>();
  readonly #waiters = new Set<() => void>();
  readonly #decoder: FrameDecoder;

  constructor(readonly socket: Socket) {
    this.#decoder = new FrameDecoder(collectFrames(this.frames));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#decoder.push(chunk);
      } catch (error) {
        this.decodeError = error as Error;
      }
      this.#wake();
    });
    this.ended = new Promise((resolve) => {
      const done = (): void => {
        resolve();
        this.#wake();
      };
      socket.once('end', done);
      socket.once('close', done);
    });
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  send(...frames: Array<Frame | Buffer>): void {
    this.socket.write(Buffer.concat(frames.map((f) => (Buffer.isBuffer(f) ? f : encodeFrame(f)))));
  }

  /** The first frame not yet claimed that matches; waits for it. Rejects if the connection ends first. */
  async next<T extends Frame = Frame>(match: (frame: Frame) => boolean = () => true, what = 'a frame', timeoutMs = 5000): Promise<T> {
    for (;;) {
      const frame = this.frames.find((f) => !this.#claimed.has(f) && match(f));
      if (frame) {
        this.#claimed.add(frame);
        return frame as T;
      }
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error(`the connection ended before ${what} arrived`);
      await new Promise<void>((resolve, reject) => {
        // Fail fast with a useful message rather than at the test's timeout.
        const timer = setTimeout(() => {
          this.#waiters.delete(wake);
          reject(new Error(`no ${what} within ${timeoutMs} ms; received: ${this.frames.map(describe).join(', ')}`));
        }, timeoutMs);
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }

  /** The next unclaimed frame of a type (and stream, if given). */
  nextOf<K extends Frame['type']>(type: K, streamId?: number): Promise<Extract<Frame, { type: K }>> {
    return this.next(
      (f) => f.type === type && (streamId === undefined || ('streamId' in f && f.streamId === streamId)),
      `frame type ${type}${streamId !== undefined ? ` for stream ${streamId}` : ''}`,
    );
  }

  /** Frames received so far of a type, for a stream if given. */
  received<K extends Frame['type']>(type: K, streamId?: number): Array<Extract<Frame, { type: K }>> {
    return this.frames.filter(
      (f) => f.type === type && (streamId === undefined || ('streamId' in f && f.streamId === streamId)),
    ) as Array<Extract<Frame, { type: K }>>;
  }

  /** Sum of the window the session granted on a stream so far. */
  windowGranted(streamId: number): number {
    return this.received(FrameType.WNDINC, streamId).reduce((sum, f) => sum + f.increment, 0);
  }

  /** Resolves once the connection has closed at the session's side (after GOAWAY, for instance). */
  async waitEnded(): Promise<void> {
    await this.ended;
  }

  #heartbeatId = 0;
  #barrier = 0;

  /**
   * A round trip through the session's reader and writer: opens a heartbeat
   * stream (once) and waits for the echo of a fresh 4-byte id. Everything sent
   * before it has been handled, and every control frame the session queued in
   * answer has arrived, once this resolves.
   */
  async barrier(heartbeatId: number): Promise<void> {
    if (this.#heartbeatId === 0) {
      this.#heartbeatId = heartbeatId;
      this.send({ type: FrameType.SYN, streamId: heartbeatId, fin: false, priority: HEARTBEAT_PRIORITY, streamType: HEARTBEAT_STREAM_TYPE });
    }
    const token = Buffer.alloc(4);
    token.writeUInt32BE(++this.#barrier);
    this.send({ type: FrameType.DATA, streamId: this.#heartbeatId, fin: false, data: token });
    await this.next(
      (f) => f.type === FrameType.DATA && f.streamId === this.#heartbeatId && f.data.equals(token),
      `the echo of barrier ${this.#barrier}`,
    );
  }
}

/**
 * Reads a stream to its end; resolves with every byte. Events, not `for await`:
 * the async iterator destroys the stream when it ends, which would reset a
 * stream whose writable side is still in use.
 */
export function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (stream.destroyed && !stream.readableEnded) {
      reject(stream.errored ?? new Error('the stream was destroyed before its end'));
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.once('close', () => reject(new Error('the stream closed before its end')));
    // A 'data' listener does not restart a stream that was paused explicitly.
    stream.resume();
  });
}

/** Adds a no-op 'error' listener: for streams a test opens but whose failure it does not examine. */
export function quiet<T extends NodeJS.EventEmitter>(stream: T): T {
  stream.on('error', () => {});
  return stream;
}

/** Resolves with the error a stream ends with (or null if it closes cleanly), also if it already has. */
export function streamOutcome(stream: Duplex): Promise<Error | null> {
  return new Promise((resolve) => {
    stream.on('error', () => {});
    if (stream.closed) {
      resolve(stream.errored);
      return;
    }
    stream.once('close', () => resolve(stream.errored));
  });
}

/** Writes `data` respecting backpressure (waits for 'drain' after false), then ends. */
export async function writeAll(stream: NodeJS.WritableStream, data: Buffer, chunkSize = 16 * 1024): Promise<void> {
  for (let at = 0; at < data.length; at += chunkSize) {
    if (!stream.write(data.subarray(at, at + chunkSize))) await once(stream as unknown as NodeJS.EventEmitter, 'drain');
  }
  stream.end();
}

const typeNames: Record<number, string> = { 1: 'SYN', 2: 'RST', 3: 'DATA', 4: 'WNDINC', 6: 'GOAWAY' };

/** A frame in a few words, for failure messages. */
export function describe(frame: Frame): string {
  switch (frame.type) {
    case FrameType.SYN:
      return `SYN(${frame.streamId}${frame.fin ? ',FIN' : ''})`;
    case FrameType.RST:
      return `RST(${frame.streamId},${frame.errorCode})`;
    case FrameType.DATA:
      return `DATA(${frame.streamId},${frame.data.length}${frame.fin ? ',FIN' : ''})`;
    case FrameType.WNDINC:
      return `WNDINC(${frame.streamId},${frame.increment})`;
    case FrameType.GOAWAY:
      return `GOAWAY(${frame.lastStreamId},${frame.errorCode},${JSON.stringify(frame.debug.toString())})`;
    default:
      return typeNames[(frame as Frame).type] ?? 'frame';
  }
}
