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

/**
 * The shortest token a server accepts. A token is the only thing between
 * the internet and the server's -L targets: a short one can be guessed
 * (even at the throttled rate) or shoulder-surfed. Generated tokens have 43.
 */
export const MIN_TOKEN_LENGTH = 16;
