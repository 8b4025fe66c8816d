import net from 'node:net';
import { errnoCode } from '../util/errors.js';

/**
 * What is at a socket path:
 * - `live`: something accepted a connection (a running muxtun, or another program);
 * - `stale`: a socket file nobody listens on (ECONNREFUSED: left by a process that crashed);
 * - `absent`: nothing there;
 * - `unknown`: the answer was something else (EACCES, a timeout, not a socket); `code` says what.
 */
export type SocketProbe = { state: 'live' | 'stale' | 'absent' } | { state: 'unknown'; code: string };

/** Default time a probe waits for a connection to be accepted. */
export const PROBE_TIMEOUT_MS = 1_000;

/**
 * Connects to `path` and hangs up at once. Never throws. Each probe is one
 * short connection, which a muxtun's control server just sees open and close.
 */
export function probeSocket(path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<SocketProbe> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    const done = (probe: SocketProbe): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(probe);
    };
    const timer = setTimeout(() => done({ state: 'unknown', code: 'ETIMEDOUT' }), timeoutMs);
    socket.once('connect', () => done({ state: 'live' }));
    socket.once('error', (error) => {
      const code = errnoCode(error) ?? 'UNKNOWN';
      if (code === 'ECONNREFUSED') done({ state: 'stale' });
      else if (code === 'ENOENT') done({ state: 'absent' });
      else done({ state: 'unknown', code });
    });
  });
}
