/** `serve --metrics` and `connect --metrics` as a user runs them: real processes, scraped over HTTP. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { echoServer, exchange } from '../support/net.js';
import { runMuxtun, startConnect, startServe } from '../support/muxtun.js';
import { metricsPort, scrape } from '../support/prometheus.js';
import { waitUntil } from '../support/wait.js';

describe('--metrics', () => {
  it('serves /metrics from serve and connect while they forward, and stops with them', async () => {
    const target = await echoServer();
    const serve = await startServe({ args: ['--metrics', '0'] });
    const connect = await startConnect(serve, { local: [`0:127.0.0.1:${target.port}`], args: ['--metrics', '127.0.0.1:0'] });
    const [servePort, connectPort] = [await metricsPort(serve.process), await metricsPort(connect.process)];
    const listening = await connect.process.waitForLog('-L listening');
    const localPort = Number(/:(\d+) ->/.exec(String(listening.forward))?.[1]);
    await exchange(localPort, randomBytes(5000));
    await exchange(localPort, randomBytes(7));

    const c = await waitUntil('connect to count both connections', async () => {
      const m = await scrape(connectPort);
      return m.value('muxtun_streams_total', { direction: 'L', result: 'ok' }) === 2 ? m : undefined;
    });
    expect(c.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'out' })).toBe(5007);
    expect(c.value('muxtun_connected')).toBe(1);
    const s = await waitUntil('serve to count both connections', async () => {
      const m = await scrape(servePort);
      return m.value('muxtun_streams_total', { direction: 'L', result: 'ok', user: 'default' }) === 2 ? m : undefined;
    });
    expect(s.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'in', user: 'default' })).toBe(5007);
    expect(s.value('muxtun_sessions', { user: 'default', state: 'active' })).toBe(1);
    expect(s.has('process_resident_memory_bytes')).toBe(true);
    // Both processes kept V8's young generation at 1 MiB semi-spaces (src/cli/heap-tuning.ts):
    // tuned after muxtun's modules had loaded, it was already at 4 MiB (8 MiB in all).
    expect(s.value('nodejs_heap_space_size_total_bytes', { space: 'new' })).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(c.value('nodejs_heap_space_size_total_bytes', { space: 'new' })).toBeLessThanOrEqual(2 * 1024 * 1024);

    connect.process.signal('SIGTERM');
    expect((await connect.process.waitForExit()).code).toBe(0);
    await expect(fetch(`http://127.0.0.1:${connectPort}/metrics`)).rejects.toThrow();
  });

  it('refuses a malformed --metrics as a usage error naming the flag', async () => {
    const { exit, stderr } = await runMuxtun(['serve', '--port', '0', '--metrics', 'localhost:99999']);
    expect(exit.code).toBe(2);
    expect(stderr).toContain('--metrics');
  });
});
