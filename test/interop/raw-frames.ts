/**
 * Just enough muxado framing to talk to the Go reference over a raw socket,
 * written independently of src/muxado so that the reference's wire behaviour
 * can be pinned without trusting our own codec.
 */
import type { Socket } from 'node:net';

export const T = { SYN: 1, RST: 2, DATA: 3, WNDINC: 4, GOAWAY: 6 } as const;
export const F = { FIN: 1, PRIORITY: 2, TYPE: 4 } as const;

export interface RawFrame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

export function encodeFrame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(payload.length & 0x3fff, 0);
  header[2] = flags;
  header[3] = type;
  header.writeUInt32BE(id & 0x7fffffff, 4);
  return Buffer.concat([header, payload]);
}

/** Reads frames from a socket as they come; keeps every byte for hex assertions. */
export class WirePeer {
  readonly frames: RawFrame[] = [];
  #buffered = Buffer.alloc(0);
  #all: Buffer[] = [];
  #ended = false;
  #waiters = new Set<() => void>();
  readonly ended: Promise<void>;

  constructor(readonly socket: Socket) {
    this.ended = new Promise((resolve) => {
      socket.once('close', () => {
        this.#ended = true;
        resolve();
        this.#wake();
      });
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.#all.push(chunk);
      this.#buffered = Buffer.concat([this.#buffered, chunk]);
      while (this.#buffered.length >= 8) {
        const length = this.#buffered.readUInt16BE(0) & 0x3fff;
        if (this.#buffered.length < 8 + length) break;
        this.frames.push({
          type: this.#buffered[3]! & 0x1f,
          flags: this.#buffered[2]!,
          id: this.#buffered.readUInt32BE(4) & 0x7fffffff,
          payload: Buffer.from(this.#buffered.subarray(8, 8 + length)),
        });
        this.#buffered = this.#buffered.subarray(8 + length);
      }
      this.#wake();
    });
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Every byte received so far. */
  get bytes(): Buffer {
    return Buffer.concat(this.#all);
  }

  /** Bytes received that do not (yet) make a whole frame. */
  get partial(): Buffer {
    return this.#buffered;
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** Resolves once `find` returns something; rejects on close or timeout, listing the frames seen. */
  waitFor<V>(what: string, find: (frames: RawFrame[]) => V | undefined, timeoutMs = 10_000): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      const check = (): void => {
        const found = find(this.frames);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.#ended) {
          done();
          reject(new Error(`connection closed before ${what}; frames: ${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${this.describe()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  describe(): string {
    const names: Record<number, string> = { 1: 'SYN', 2: 'RST', 3: 'DATA', 4: 'WNDINC', 6: 'GOAWAY' };
    const shown = this.frames.map((f) => `${names[f.type] ?? f.type}(id ${f.id}, flags ${f.flags}, ${f.payload.toString('hex') || '-'})`);
    return `[${shown.join(', ')}]${this.#buffered.length ? ` + partial ${this.#buffered.toString('hex')}` : ''}`;
  }
}
