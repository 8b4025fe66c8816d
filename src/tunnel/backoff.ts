/** First delay and largest delay, in ms, when none are given. */
export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, capMs: 30_000 });

/** Exponential backoff with jitter: attempt n waits between half and all of min(cap, base * 2^n). */
export class Backoff {
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: { baseMs?: number; capMs?: number; random?: () => number } = {}) {
    this.#baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
    this.#capMs = options.capMs ?? DEFAULT_BACKOFF.capMs;
    this.#random = options.random ?? Math.random;
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in ms. */
  next(): number {
    const ceiling = Math.min(this.#capMs, this.#baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    // Half fixed, half random: never retry at once, never stampede together.
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
