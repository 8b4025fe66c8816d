import type { Session, Stream } from '../muxado/index.js';

/** A session to drain, and the streams that stay open until it closes (its control stream). */
export interface Drainable {
  session: Session;
  keep: Stream[];
}

/**
 * Resolves when every session has no stream open but the ones it keeps,
 * or when `timeoutMs` passes, whichever comes first; returns whether they
 * drained. Driven by the engine's stream ends, not by polling.
 */
export async function waitForDrain(sessions: Iterable<Drainable>, timeoutMs: number): Promise<boolean> {
  const signal = AbortSignal.timeout(Math.max(1, timeoutMs));
  try {
    await Promise.all([...sessions].map(({ session, keep }) => session.streamsClosed({ except: keep, signal })));
    return true;
  } catch {
    return false;
  }
}
