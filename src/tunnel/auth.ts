import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares two tokens in constant time. Both are hashed with SHA-256 first,
 * so neither the comparison time nor an early length check reveals how long
 * the expected token is or how much of a guess was right.
 */
export function tokensEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a, 'utf8').digest();
  const right = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(left, right);
}
