/** Bytes for tests: big-endian integers, hex with spaces, deterministic pseudo-random data. */

/** Each value as 2 big-endian bytes (masked to 16 bits, so a test can write any number). */
export function u16(...values: number[]): Buffer {
  const out = Buffer.alloc(2 * values.length);
  values.forEach((value, i) => out.writeUInt16BE(value & 0xffff, 2 * i));
  return out;
}

/** Each value as 4 big-endian bytes (taken as unsigned 32 bits). */
export function u32(...values: number[]): Buffer {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((value, i) => out.writeUInt32BE(value >>> 0, 4 * i));
  return out;
}

/** Hex digits to bytes; whitespace is ignored, so wire dumps can be spaced by field. */
export const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Deterministic pseudo-random bytes (xorshift), different for every seed, so a failure reproduces. */
export function patternBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
