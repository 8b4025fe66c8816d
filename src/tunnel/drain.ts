import type { Session } from '../muxado/index.js';

/**
 * Resolves when every session has at most `keep` streams open (the control
 * stream), or when `timeoutMs` passes, whichever comes first. Returns
 * whether they drained. The engine reports no per-stream end event, so this
 * looks every 50 ms: cheap, and only during shutdown.
 */
export async function waitForDrain(sessions: Iterable<Session>, keep: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const list = [...sessions];
  for (;;) {
    if (list.every((s) => s.isClosed || s.openStreams <= keep)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
