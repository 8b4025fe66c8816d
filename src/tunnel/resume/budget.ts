import { InvalidArgumentError } from '../../errors.js';
import { defaultResumeConfig } from './config.js';

interface Waiter {
  owner: object;
  want: number;
  wake: (owner: object, granted: number) => void;
}

/**
 * The replay bytes one session may hold, summed over its connections.
 *
 * A connection reserves room before it keeps a chunk and releases it when the
 * peer acknowledges the bytes. Room is handed out first come, first served:
 * while any connection waits, `take()` grants nothing to the others, and
 * `release()` wakes the waiting ones in the order they queued, handing each
 * its room directly (a woken connection must not find that another one took
 * the room between the wake-up and its next socket read).
 *
 * Invariant: `used <= limit`, where `used` is the room granted and not yet
 * released (bytes held in replay buffers plus room granted to a woken
 * connection that has not read yet).
 */
export class ReplayBudget {
  readonly limit: number;
  #used = 0;
  #peak = 0;
  #queue: Waiter[] = [];
  #head = 0;

  constructor(limit: number = defaultResumeConfig.maxSessionReplayBytes) {
    if (!Number.isInteger(limit) || limit < 0 || limit > 2 ** 40) {
      throw new InvalidArgumentError(`the session replay limit must be an integer from 0 to ${2 ** 40}, got ${String(limit)}`);
    }
    this.limit = limit;
  }

  /** Bytes granted and not released. */
  get used(): number {
    return this.#used;
  }

  /** The most `used` has ever been: for tests and statistics. */
  get peak(): number {
    return this.#peak;
  }

  /** Connections waiting for room. */
  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** Grants up to `want` bytes at once and returns how many; 0 while others wait their turn. */
  take(want: number): number {
    if (this.#head < this.#queue.length) return 0;
    return this.#grant(want);
  }

  /** Returns room; connections waiting for it get it in the order they queued. */
  release(bytes: number): void {
    if (bytes <= 0) return;
    this.#used -= bytes;
    while (this.#head < this.#queue.length && this.#used < this.limit) {
      const waiter = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Waiter;
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      }
      waiter.wake(waiter.owner, this.#grant(waiter.want));
    }
  }

  /**
   * Queues `owner` for `want` bytes: `wake(owner, granted)` is called when
   * room frees, with 1 to `want` bytes already granted to it. `wake` should
   * be one function shared by all owners (no closure per connection).
   */
  wait<T extends object>(owner: T, want: number, wake: (owner: T, granted: number) => void): void {
    this.#queue.push({ owner, want, wake: wake as (owner: object, granted: number) => void });
  }

  /** Takes `owner` out of the queue (it ended while waiting). */
  cancel(owner: object): void {
    for (let i = this.#head; i < this.#queue.length; i++) {
      if (this.#queue[i]!.owner === owner) {
        this.#queue.splice(i, 1);
        if (this.#head === this.#queue.length) {
          this.#queue = [];
          this.#head = 0;
        }
        return;
      }
    }
  }

  #grant(want: number): number {
    const granted = Math.max(0, Math.min(want, this.limit - this.#used));
    this.#used += granted;
    if (this.#used > this.#peak) this.#peak = this.#used;
    return granted;
  }
}
