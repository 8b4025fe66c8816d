/**
 * Splits a byte stream into newline-terminated lines, holding at most
 * `maxLineBytes` of an unfinished line. Works on bytes, not strings, so the
 * bound is in bytes and a UTF-8 character split across reads is decoded
 * whole. A trailing `\r` is dropped (CRLF from `nc` or Windows tools).
 */
export class LineSplitter {
  readonly #maxLineBytes: number;
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /**
   * The lines `chunk` completes. `overflow: true` when the unfinished line
   * grew beyond the bound: the lines before it are still returned, and the
   * splitter should not be fed any more (the stream is out of step).
   */
  push(chunk: Buffer): { lines: string[]; overflow: boolean } {
    const lines: string[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(0x0a, start); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      if (this.#pendingBytes + newline - start > this.#maxLineBytes) return { lines, overflow: true };
      this.#pending.push(chunk.subarray(start, newline));
      lines.push(this.#take());
      start = newline + 1;
    }
    if (this.#pendingBytes + chunk.length - start > this.#maxLineBytes) return { lines, overflow: true };
    if (start < chunk.length) {
      this.#pending.push(chunk.subarray(start));
      this.#pendingBytes += chunk.length - start;
    }
    return { lines, overflow: false };
  }

  /** The unfinished last line at the end of the stream, if any (a request sent without its newline). */
  end(): string | undefined {
    return this.#pendingBytes > 0 ? this.#take() : undefined;
  }

  #take(): string {
    let text = Buffer.concat(this.#pending).toString('utf8');
    this.#pending.length = 0;
    this.#pendingBytes = 0;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    return text;
  }
}
