import type { Session } from '../muxado/index.js';

/**
 * The client's current session, and the connections waiting for one while
 * it (re)connects. A wait is bounded in time; `close()` ends every wait.
 */
export class SessionSlot {
  #session: Session | null = null;
  #waiters = new Set<(session: Session | null) => void>();
  #closed = false;

  /** The session if it is up, else null. */
  get current(): Session | null {
    const session = this.#session;
    return session !== null && !session.isClosed ? session : null;
  }

  /** How many connections wait for a session now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  set(session: Session | null): void {
    this.#session = session;
    if (session === null) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter(session);
  }

  /** Resolves with the session once one is up, or null after `timeoutMs` or when the slot closes. */
  wait(timeoutMs: number): Promise<Session | null> {
    const current = this.current;
    if (current !== null) return Promise.resolve(current);
    if (this.#closed || timeoutMs <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = (session: Session | null): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(session);
      };
      const timer = setTimeout(() => waiter(null), timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** No session will come any more (stopping): every wait ends with null. */
  close(): void {
    this.#closed = true;
    this.#session = null;
    for (const waiter of [...this.#waiters]) waiter(null);
  }
}
