/**
 * The bytes a connection sent and the peer has not acknowledged yet, in
 * order: the Buffers the socket emitted, held by reference. Only the chunk
 * an acknowledgement ends inside is replaced, by a view on its tail: nothing
 * is ever copied.
 *
 * The live chunks are `#chunks[#head..]`; dropping from the front advances
 * `#head` instead of shifting the array, and the array is compacted when
 * most of it is dead slots, so both push and drop are O(1) amortised.
 */
export class ReplayQueue {
  #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** Drops the first `bytes` bytes (at most `this.bytes`). */
  drop(bytes: number): void {
    let left = Math.min(bytes, this.#bytes);
    this.#bytes -= left;
    const chunks = this.#chunks;
    while (left > 0) {
      const chunk = chunks[this.#head]!;
      if (chunk.length <= left) {
        left -= chunk.length;
        chunks[this.#head++] = EMPTY;
      } else {
        chunks[this.#head] = chunk.subarray(left);
        left = 0;
      }
    }
    if (this.#head === chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 64 && this.#head * 2 >= chunks.length) {
      this.#chunks = chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Writes every chunk held, oldest first, to `target` (a new stream after a
   * resume). Returns false if a write asked to wait for 'drain'; all chunks
   * are written regardless: the target's buffer holds references, not copies.
   */
  writeTo(target: { write(chunk: Buffer): boolean }): boolean {
    let ok = true;
    const chunks = this.#chunks;
    for (let i = this.#head; i < chunks.length; i++) if (!target.write(chunks[i]!)) ok = false;
    return ok;
  }

  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}

const EMPTY = Buffer.alloc(0);
