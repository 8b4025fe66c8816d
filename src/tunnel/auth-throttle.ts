/** How many addresses the throttle remembers, and for how long after their last failure. */
export const AUTH_THROTTLE_DEFAULTS = Object.freeze({ maxEntries: 10_000, forgetAfterMs: 10 * 60_000 });

/**
 * Slows down guessing: each failed authentication from an address doubles
 * the delay before that address's next hello is answered (0.1 s, 0.2 s, …
 * up to 10 s). A success or ten quiet minutes forget the address. The table
 * is bounded: the oldest entries go first.
 */
export class AuthThrottle {
  readonly #failures = new Map<string, { count: number; last: number }>();
  readonly #maxEntries: number;
  readonly #forgetAfterMs: number;

  constructor(options: { maxEntries?: number; forgetAfterMs?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? AUTH_THROTTLE_DEFAULTS.maxEntries;
    this.#forgetAfterMs = options.forgetAfterMs ?? AUTH_THROTTLE_DEFAULTS.forgetAfterMs;
  }

  /** How long to wait before answering this address's hello, in ms. */
  delayFor(address: string, now = Date.now()): number {
    const entry = this.#failures.get(address);
    if (!entry) return 0;
    if (now - entry.last > this.#forgetAfterMs) {
      this.#failures.delete(address);
      return 0;
    }
    return Math.min(10_000, 100 * 2 ** Math.min(entry.count - 1, 10));
  }

  failed(address: string, now = Date.now()): void {
    const entry = this.#failures.get(address);
    this.#failures.delete(address);
    this.#failures.set(address, { count: (entry?.count ?? 0) + 1, last: now });
    if (this.#failures.size > this.#maxEntries) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }

  succeeded(address: string): void {
    this.#failures.delete(address);
  }
}
