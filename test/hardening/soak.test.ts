/**
 * The long one: 5,000 connections at once through one tunnel, every echo
 * checked by hash, then all closed — and nothing left behind: no stream on
 * either end, no socket, no timer.
 *
 * Both tunnel ends run in this process (so their stats and this process's
 * active handles can be read); the load and its echo target run in a child,
 * so that the 20,000 sockets involved are split about evenly between two
 * processes' file descriptor limits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/net.js';
import { repoRoot, TestProcess } from '../support/process.js';
import { forward, startTunnelClient, startTunnelServer } from '../support/tunnel.js';
import { waitUntil, within } from '../support/wait.js';

const CONNECTIONS = 5_000;

/** The soft limit on open files of this process (inherited by the child). */
function openFileLimit(): number {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !match || match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

/** Active handles and requests by kind, e.g. { TCPSocketWrap: 3, Timeout: 1 }. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

type LoadMessage =
  | { type: 'echo'; port: number }
  | { type: 'open'; verified: number; failures: string[] }
  | { type: 'closed'; errors: string[]; errorCount: number }
  | { type: 'error'; message: string };

function nextMessage<T extends LoadMessage['type']>(load: TestProcess, type: T, timeoutMs: number): Promise<Extract<LoadMessage, { type: T }>> {
  const child = load.child;
  return within(
    new Promise((resolve, reject) => {
      const onMessage = (message: LoadMessage): void => {
        if (message.type === 'error') reject(new Error(`load generator failed: ${message.message}`));
        else if (message.type === type) resolve(message as Extract<LoadMessage, { type: T }>);
        else return;
        child.off('message', onMessage);
      };
      child.on('message', onMessage);
      void load.exited.then(({ code, signal }) => reject(new Error(`load generator exited (${code ?? signal}) before "${type}"\n${load.tail()}`)));
    }),
    timeoutMs,
    `the load generator to report "${type}"`,
  );
}

describe('soak', () => {
  it(`${CONNECTIONS} concurrent connections through one tunnel (-L and -R), echoes verified by hash, then closed with nothing leaked`, async () => {
    // Each process holds about 2 sockets per connection.
    const limit = openFileLimit();
    if (limit < 2 * CONNECTIONS + 1_000) {
      throw new Error(`this test needs ${2 * CONNECTIONS + 1_000} open files per process, the limit is ${limit}: raise it (ulimit -n 65536) before running the suite`);
    }
    const seed = Number(process.env.MUXTUN_SOAK_SEED ?? Date.now() % 2 ** 31);

    const load = new TestProcess({ command: process.execPath, args: [join(repoRoot, 'test', 'hardening', 'fixtures', 'load.mjs')], ipc: true, name: 'load generator' });
    const { port: echoPort } = await nextMessage(load, 'echo', 10_000);

    const server = await startTunnelServer();
    const lPort = await freePort();
    // Four in five connections go through -L, one in five through -R.
    const { client, ready } = await startTunnelClient(server, { local: [forward(lPort, echoPort)], remote: [forward(0, echoPort)] });
    const rPort = ready.remote[0]!.port;
    // Settle what the setup left in flight, then take the baseline.
    await new Promise((resolve) => setImmediate(resolve));
    const baseline = resources();

    const started = Date.now();
    load.child.send({ type: 'run', ports: [lPort, lPort, lPort, lPort, rPort], count: CONNECTIONS, seed });
    const opened = await nextMessage(load, 'open', 90_000);
    expect(opened.failures, `seed ${seed}`).toEqual([]);
    expect(opened.verified).toBe(CONNECTIONS);
    // All of them are open at once, on both ends of the tunnel.
    expect(server.server.stats()).toMatchObject({ sessions: 1, streams: CONNECTIONS });
    expect(client.stats()).toMatchObject({ connected: true, streams: CONNECTIONS });

    load.child.send({ type: 'close' });
    const closed = await nextMessage(load, 'closed', 60_000);
    expect(closed.errorCount, `errors while closing: ${closed.errors.join(', ')}`).toBe(0);

    await waitUntil('both tunnel ends to have no stream left', () => server.server.stats().streams === 0 && client.stats().streams === 0, 15_000, 50);
    expect(server.server.stats()).toMatchObject({ sessions: 1, unauthenticated: 0, streams: 0 });
    expect(client.stats()).toMatchObject({ connected: true, streams: 0 });
    let last: Record<string, number> = {};
    await waitUntil(
      'active handles and timers to return to the baseline',
      () => {
        last = resources();
        // No kind above its baseline (a timer in flight at the baseline may be gone since).
        return Object.entries(last).every(([kind, count]) => count <= (baseline[kind] ?? 0));
      },
      15_000,
      50,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: baseline ${JSON.stringify(baseline)}, now ${JSON.stringify(last)}`);
    });
    // For the report when run alone: how long the whole cycle took.
    expect(Date.now() - started).toBeLessThan(150_000);

    load.child.disconnect();
    await load.waitForExit();
  }, 180_000);
});
