/**
 * `/metrics` against a known workload: an in-process serve and connect,
 * each with its endpoint, scraped and parsed (test/support/prometheus.ts).
 * "Bytes" are application bytes of forwarded connections, so an echo of S
 * bytes is S out and S in on both sides, exactly.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { serveMetrics } from '../../src/metrics/index.js';
import type { TunnelClient, TunnelServer } from '../../src/tunnel/index.js';
import { currentScope } from '../support/scope.js';
import { echoServer, exchange, freePort, relay } from '../support/net.js';
import { parseExposition, scrape, type Exposition } from '../support/prometheus.js';
import { forward, rawSession, sendHello, startTunnelClient, startTunnelServer } from '../support/tunnel.js';
import { waitUntil, within } from '../support/wait.js';

async function endpoint(source: { client: TunnelClient } | { server: TunnelServer }): Promise<number> {
  const metrics = await serveMetrics(source, { host: '127.0.0.1', port: 0 });
  currentScope().add(() => metrics.close());
  return metrics.address.port;
}

/** Scrapes until `check` holds (counters settle once both ends saw the connections close); returns that scrape. */
async function scrapeUntil(port: number, what: string, check: (m: Exposition) => boolean): Promise<Exposition> {
  let last: Exposition | undefined;
  try {
    return await waitUntil(what, async () => {
      last = await scrape(port);
      return check(last) ? last : undefined;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; last scrape:\n${last?.samples.filter((s) => s.name.startsWith('muxtun_')).map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`).join('\n')}`);
  }
}

const SIZES = [1, 1000, 65_536, 200_000, 3];
const TOTAL = SIZES.reduce((a, b) => a + b, 0);

describe.each([
  { resume: true, path: 'resumable conns' },
  { resume: false, path: 'bridge()' },
])('metrics of -L and -R over $path', ({ resume }) => {
  it('counts N -L connections as ok, with exactly the bytes sent and echoed, on both sides', async () => {
    const target = await echoServer();
    const served = await startTunnelServer();
    const { client } = await startTunnelClient(served, { local: [forward(0, target.port)], resume });
    const [clientPort, serverPort] = [await endpoint({ client }), await endpoint({ server: served.server })];
    const port = client.localAddresses[0]!.port;
    for (const size of SIZES) expect((await exchange(port, randomBytes(size))).length).toBe(size);

    const c = await scrapeUntil(clientPort, 'the client to count 5 ended -L connections', (m) => m.value('muxtun_streams_total', { direction: 'L' }) === SIZES.length);
    expect(c.value('muxtun_streams_total', { direction: 'L', result: 'ok' })).toBe(SIZES.length);
    expect(c.value('muxtun_streams_open', { direction: 'L' })).toBe(0);
    expect(c.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'out' })).toBe(TOTAL);
    expect(c.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'in' })).toBe(TOTAL);
    expect(c.value('muxtun_forward_bytes_total', { direction: 'R' })).toBe(0);
    expect(c.value('muxtun_connected')).toBe(1);
    expect(c.types.get('muxtun_streams_total')).toBe('counter');
    expect(c.types.get('muxtun_streams_open')).toBe('gauge');
    // The default process metrics are there too.
    expect(c.has('process_cpu_user_seconds_total')).toBe(true);

    const s = await scrapeUntil(serverPort, 'the server to count 5 ended -L connections', (m) => m.value('muxtun_streams_total', { direction: 'L' }) === SIZES.length);
    expect(s.value('muxtun_streams_total', { direction: 'L', result: 'ok', user: 'default' })).toBe(SIZES.length);
    // The server's local sockets are the target's: what it read from them went out into the tunnel.
    expect(s.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'out', user: 'default' })).toBe(TOTAL);
    expect(s.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'in', user: 'default' })).toBe(TOTAL);
    expect(s.value('muxtun_dial_duration_seconds_count', { direction: 'L' })).toBe(SIZES.length);
    expect(s.value('muxtun_dial_duration_seconds_bucket', { direction: 'L', le: '+Inf' })).toBe(SIZES.length);
    expect(s.types.get('muxtun_dial_duration_seconds')).toBe('histogram');
    expect(s.value('muxtun_sessions', { user: 'default', state: 'active' })).toBe(1);

    // What `status` reads: the same counts for the forward's id.
    const id = client.forwards().find((f) => f.kind === 'local')!.id;
    expect(client.forwardStats().get(id)).toEqual({ connections: 0, connectionsTotal: SIZES.length, bytesIn: TOTAL, bytesOut: TOTAL });
    const session = served.server.sessions()[0]!;
    expect(session.traffic.L).toEqual({ connections: 0, connectionsTotal: SIZES.length, bytesIn: TOTAL, bytesOut: TOTAL });
  });

  it('shows an open connection and its bytes while it runs', async () => {
    const target = await echoServer();
    const served = await startTunnelServer();
    const { client } = await startTunnelClient(served, { local: [forward(0, target.port)], resume });
    const clientPort = await endpoint({ client });
    const socket = net.connect({ host: '127.0.0.1', port: client.localAddresses[0]!.port });
    currentScope().add(() => socket.destroy());
    let echoed = 0;
    socket.on('data', (chunk: Buffer) => (echoed += chunk.length));
    socket.write(randomBytes(12_345));
    await waitUntil('the echo', () => echoed === 12_345);
    const m = await scrapeUntil(clientPort, 'the echoed bytes to show', (e) => e.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'in' }) === 12_345);
    expect(m.value('muxtun_streams_open', { direction: 'L' })).toBe(1);
    expect(m.value('muxtun_forward_bytes_total', { direction: 'L', flow: 'out' })).toBe(12_345);
    expect(m.value('muxtun_streams_total', { direction: 'L' })).toBe(0);
  });

  it('counts -R connections on both sides, and the client\'s dial times', async () => {
    const target = await echoServer();
    const served = await startTunnelServer();
    const remotePort = await freePort();
    const { client } = await startTunnelClient(served, { remote: [forward(remotePort, target.port, '127.0.0.1')], resume });
    const [clientPort, serverPort] = [await endpoint({ client }), await endpoint({ server: served.server })];
    for (const size of [10, 70_000]) expect((await exchange(remotePort, randomBytes(size))).length).toBe(size);

    const c = await scrapeUntil(clientPort, 'the client to count 2 -R connections', (m) => m.value('muxtun_streams_total', { direction: 'R' }) === 2);
    expect(c.value('muxtun_streams_total', { direction: 'R', result: 'ok' })).toBe(2);
    expect(c.value('muxtun_forward_bytes_total', { direction: 'R', flow: 'in' })).toBe(70_010);
    expect(c.value('muxtun_forward_bytes_total', { direction: 'R', flow: 'out' })).toBe(70_010);
    expect(c.value('muxtun_dial_duration_seconds_count', { direction: 'R' })).toBe(2);
    const s = await scrapeUntil(serverPort, 'the server to count 2 -R connections', (m) => m.value('muxtun_streams_total', { direction: 'R' }) === 2);
    expect(s.value('muxtun_streams_total', { direction: 'R', result: 'ok', user: 'default' })).toBe(2);
    expect(s.value('muxtun_forward_bytes_total', { direction: 'R', flow: 'in', user: 'default' })).toBe(70_010);
    const id = client.forwards().find((f) => f.kind === 'remote')!.id;
    expect(served.server.sessions()[0]!.listeners).toEqual([{ id, bindHost: '127.0.0.1', requested: expect.any(Number), port: remotePort, dynamic: false, connections: 0, connectionsTotal: 2, bytesIn: 70_010, bytesOut: 70_010 }]);
  });
});

describe('refusals and failures', () => {
  it('counts a -L the server\'s policy refuses as refused, on both sides', async () => {
    const target = await echoServer();
    // Only another port is allowed.
    const served = await startTunnelServer({ policy: { allowLocal: [{ host: '127.0.0.1', ports: { from: target.port + 1, to: target.port + 1 } }], allowRemote: [{ from: 1024, to: 65535 }] } });
    const { client } = await startTunnelClient(served, { local: [forward(0, target.port)] });
    const [clientPort, serverPort] = [await endpoint({ client }), await endpoint({ server: served.server })];
    const socket = net.connect({ host: '127.0.0.1', port: client.localAddresses[0]!.port });
    socket.on('error', () => {});
    socket.write('hello');
    await within(new Promise((resolve) => socket.once('close', resolve)), 5_000, 'the refused connection to close');

    const s = await scrapeUntil(serverPort, 'the server to count the refusal', (m) => m.value('muxtun_streams_total', { direction: 'L' }) === 1);
    expect(s.value('muxtun_streams_total', { direction: 'L', result: 'refused', user: 'default' })).toBe(1);
    expect(s.value('muxtun_dial_duration_seconds_count', { direction: 'L' })).toBe(0);
    const c = await scrapeUntil(clientPort, 'the client to count the refusal', (m) => m.value('muxtun_streams_total', { direction: 'L' }) === 1);
    expect(c.value('muxtun_streams_total', { direction: 'L', result: 'refused' })).toBe(1);
  });

  it('counts a -R whose target refuses as dial_failed on the client', async () => {
    const served = await startTunnelServer();
    const [remotePort, closed] = [await freePort(), await freePort()];
    const { client } = await startTunnelClient(served, { remote: [forward(remotePort, closed, '127.0.0.1')] });
    const clientPort = await endpoint({ client });
    const socket = net.connect({ host: '127.0.0.1', port: remotePort });
    socket.on('error', () => {});
    await within(new Promise((resolve) => socket.once('close', resolve)), 5_000, 'the connection to close');
    const c = await scrapeUntil(clientPort, 'the failed dial', (m) => m.value('muxtun_streams_total', { direction: 'R' }) === 1);
    expect(c.value('muxtun_streams_total', { direction: 'R', result: 'dial_failed' })).toBe(1);
    expect(c.value('muxtun_streams_open', { direction: 'R' })).toBe(0);
  });

  it('counts a wrong token as an auth failure', async () => {
    const served = await startTunnelServer();
    const serverPort = await endpoint({ server: served.server });
    const { session } = await rawSession(served.port);
    const { reader } = sendHello(session, { type: 'hello', version: 1, token: 'wrong-token-wrong-token-wrong', clientId: 'x' });
    await reader.next('error');
    const s = await scrape(serverPort);
    expect(s.value('muxtun_auth_failures_total')).toBe(1);
    expect(s.value('muxtun_sessions')).toBe(0);
  });

  it('counts a session refused at --max-sessions as a limit refusal', async () => {
    const served = await startTunnelServer({ limits: { maxSessions: 1 } });
    const serverPort = await endpoint({ server: served.server });
    await startTunnelClient(served, { local: [forward(0, 9)] });
    const { session } = await rawSession(served.port);
    const { reader } = sendHello(session, { type: 'hello', version: 1, token: served.token, clientId: 'another' });
    await reader.next('error');
    const s = await scrape(serverPort);
    expect(s.value('muxtun_limit_refusals_total', { limit: 'max_sessions' })).toBe(1);
    expect(s.value('muxtun_limit_refusals_total')).toBe(1);
  });
});

describe('a dropped link', () => {
  it('counts each cut as a reconnect and a resume on the client and a resume on the server; an open connection lives on', { timeout: 30_000 }, async () => {
    const target = await echoServer();
    const served = await startTunnelServer();
    const path = await relay(served.port);
    const { client } = await startTunnelClient(served, { port: path.port, local: [forward(0, target.port)], timings: { backoffBaseMs: 50, backoffCapMs: 250 } });
    const [clientPort, serverPort] = [await endpoint({ client }), await endpoint({ server: served.server })];
    const app = net.connect({ host: '127.0.0.1', port: client.localAddresses[0]!.port });
    app.on('error', () => {});
    const echoed = (text: string): Promise<void> =>
      within(
        new Promise<void>((resolve) => {
          let got = '';
          const onData = (chunk: Buffer): void => {
            got += chunk.toString();
            if (got === text) {
              app.off('data', onData);
              resolve();
            }
          };
          app.on('data', onData);
          app.write(text);
        }),
        10_000,
        `"${text}" to come back`,
      );
    await echoed('before');
    const before = await scrape(clientPort);
    expect(before.value('muxtun_reconnects_total')).toBe(0);
    expect(before.value('muxtun_resumes_total')).toBe(0);

    for (let cut = 1; cut <= 2; cut++) {
      expect(path.cut()).toBe(1);
      await scrapeUntil(clientPort, 'the client to see the link down', (m) => m.value('muxtun_connected') === 0);
      path.restore();
      await scrapeUntil(clientPort, `the client's resume number ${cut}`, (m) => m.value('muxtun_resumes_total') === cut && m.value('muxtun_connected') === 1);
      await echoed(`after cut ${cut}`);
    }
    const c = await scrape(clientPort);
    expect(c.value('muxtun_reconnects_total')).toBe(2);
    expect(c.value('muxtun_resumes_total')).toBe(2);
    const s = await scrape(serverPort);
    expect(s.value('muxtun_resumes_total')).toBe(2);
    expect(s.value('muxtun_sessions')).toBe(1);
    app.destroy();
  });
});

describe('the /metrics listener', () => {
  it('answers 404 elsewhere, 405 to other methods, 400 to garbage, and keeps serving', async () => {
    const served = await startTunnelServer();
    const port = await endpoint({ server: served.server });
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics/x`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
    const head = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);

    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    await within(new Promise((resolve) => socket.once('close', resolve)), 5_000, 'the garbage connection to close');
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 400/);

    const m = await scrape(port);
    expect(m.has('muxtun_auth_failures_total')).toBe(true);
  });

  it('has bounded label sets: no label names a connection, session or address', async () => {
    const target = await echoServer();
    const served = await startTunnelServer();
    const { client } = await startTunnelClient(served, { local: [forward(0, target.port)] });
    await exchange(client.localAddresses[0]!.port, 'x');
    const text = await (await fetch(`http://127.0.0.1:${await endpoint({ server: served.server })}/metrics`)).text();
    const ours = parseExposition(text).samples.filter((s) => s.name.startsWith('muxtun_'));
    const names = new Set(ours.flatMap((s) => Object.keys(s.labels)));
    expect([...names].sort()).toEqual(['direction', 'flow', 'le', 'limit', 'result', 'state', 'user']);
  });
});
