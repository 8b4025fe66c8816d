/**
 * Faults with real processes: the server killed or frozen mid-transfer, the
 * network path going silent, a target that stops reading. The tunnel notices
 * in heartbeat time, fails local connections loudly (reset, not a hang),
 * comes back on its own with its -R ports, and keeps memory bounded.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FAST_HEARTBEAT, startConnect, startServe } from '../support/muxtun.js';
import { connectionEnd, dial, echoServer, expectEcho, freePort, relay, sha256, sinkServer } from '../support/net.js';
import { rssOf } from '../support/process.js';
import { waitUntil, within } from '../support/wait.js';

/** The heartbeat of FAST_HEARTBEAT: interval + tolerance, in ms. */
const DEAD_AFTER_MS = 250 + 1_500;

/** Keeps writing to a socket (respecting backpressure) until it fails, `limit` bytes or `stop()`; reads and drops what comes back. */
function keepWriting(socket: net.Socket, limit = Infinity): { stop: () => void; written: () => number } {
  let stopped = false;
  let written = 0;
  const chunk = randomBytes(16 * 1024);
  socket.resume();
  const pump = (): void => {
    while (!stopped && !socket.destroyed && written < limit) {
      written += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
  return {
    stop: () => {
      stopped = true;
    },
    written: () => written,
  };
}

describe('serve killed with SIGKILL mid-transfer', () => {
  it('connect notices within the heartbeat time, resets local connections, and reconnects with its -R when serve is back', { timeout: 60_000 }, async () => {
    const echo = await echoServer();
    const serve = await startServe({ args: FAST_HEARTBEAT });
    const lPort = await freePort();
    const rPort = await freePort();
    // --no-resume: these faults test the reconnect without resumption (test/e2e/resume.test.ts covers it with).
    const connect = await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], remote: [`${rPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true, args: ['--no-resume'] });
    expect(connect.remotePorts).toEqual([rPort]);

    // Traffic in flight both ways when the server dies.
    const local = await dial(lPort);
    const remote = await dial(rPort);
    const localWriter = keepWriting(local);
    const remoteWriter = keepWriting(remote);
    await waitUntil('data to flow through both forwards', () => localWriter.written() > 1 << 20 && remoteWriter.written() > 1 << 20);

    const mark = connect.process.mark();
    const killedAt = Date.now();
    serve.process.signal('SIGKILL');
    await connect.process.waitForLog('session to the server lost', { after: mark, timeoutMs: DEAD_AFTER_MS + 3_000 });
    expect(Date.now() - killedAt).toBeLessThan(DEAD_AFTER_MS + 1_000);
    expect(await connectionEnd(local, 5_000)).toBe('reset');
    expect(await connectionEnd(remote, 5_000)).not.toBe('timeout');
    // While the server is down, a new local connection waits for it (10 s) and is then reset, not left hanging.
    const meanwhile = await dial(lPort);
    expect(await connectionEnd(meanwhile, 15_000)).toBe('reset');

    // Same port, same state dir: same identity and token.
    const back = await startServe({ port: serve.port, stateDir: serve.stateDir, args: FAST_HEARTBEAT });
    expect(back.fingerprint).toBe(serve.fingerprint);
    await connect.process.waitForLog('reconnected', { after: mark, timeoutMs: 20_000 });
    const restored = await connect.process.waitForLog('-R listening on the server', { after: mark });
    expect(String(restored.forward)).toContain(`:${rPort} -> `);
    await expectEcho(rPort);
    await expectEcho(lPort);
  });
});

describe('serve frozen with SIGSTOP', () => {
  it('connect gives up on the frozen session after the heartbeat tolerance and reconnects after SIGCONT, -R port and all', async () => {
    const echo = await echoServer();
    // The server keeps the default heartbeat (13 s): it does not give up on the client by itself.
    const serve = await startServe();
    const lPort = await freePort();
    const rPort = await freePort();
    // --no-resume: these faults test the reconnect without resumption (test/e2e/resume.test.ts covers it with).
    const connect = await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], remote: [`${rPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true, args: ['--no-resume'] });
    const local = await dial(lPort);
    const writer = keepWriting(local);
    await waitUntil('data to flow', () => writer.written() > 1 << 20);

    const mark = connect.process.mark();
    const stoppedAt = Date.now();
    serve.process.signal('SIGSTOP');
    try {
      const lost = await connect.process.waitForLog('session to the server lost', { after: mark, timeoutMs: DEAD_AFTER_MS + 5_000 });
      const frozenFor = Date.now() - stoppedAt;
      expect(String(lost.reason)).toMatch(/heartbeat/i);
      expect(frozenFor).toBeGreaterThanOrEqual(DEAD_AFTER_MS - 300);
      expect(await connectionEnd(local, 5_000)).toBe('reset');
    } finally {
      serve.process.signal('SIGCONT');
    }
    await connect.process.waitForLog('reconnected', { after: mark, timeoutMs: 20_000 });
    const restored = await connect.process.waitForLog('-R listening on the server', { after: mark });
    expect(String(restored.forward)).toContain(`:${rPort} -> `);
    expect(connect.process.logs(mark).filter((l) => l.code === 'ERR_MUXTUN_BIND')).toEqual([]);
    await expectEcho(rPort);
    await expectEcho(lPort);
  });
});

describe('a path that dies silently', () => {
  it('the client reconnects before the server noticed its old session died: the server replaces it and the -R port comes back', async () => {
    const echo = await echoServer();
    const serve = await startServe();
    const proxy = await relay(serve.port);
    const rPort = await freePort();
    const connect = await startConnect(serve, { port: proxy.port, remote: [`${rPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true, args: ['--no-resume'] });
    await expectEcho(rPort);

    const mark = connect.process.mark();
    const serveMark = serve.process.mark();
    expect(proxy.blackhole()).toBe(1);
    await connect.process.waitForLog('session to the server lost', { after: mark, timeoutMs: DEAD_AFTER_MS + 5_000 });
    await connect.process.waitForLog('reconnected', { after: mark, timeoutMs: 20_000 });

    // The server still held the old session (its heartbeat waits 13 s) and the port with it.
    const replaced = await serve.process.waitForLog('closing client session', { after: serveMark });
    expect(replaced.reason).toBe('replaced by a new session of the same client');
    const restored = await connect.process.waitForLog('-R listening on the server', { after: mark });
    expect(String(restored.forward)).toContain(`:${rPort} -> `);
    expect(connect.process.logs(mark).filter((l) => l.level >= 50)).toEqual([]);
    await expectEcho(rPort);
  });
});

describe('a target that accepts and never reads', () => {
  it('holds tunnel memory bounded while 200 MiB are pushed at it, and another stream of the same tunnel completes a transfer meanwhile', async () => {
    const sink = await sinkServer();
    const echo = await echoServer();
    const serve = await startServe();
    const sinkPort = await freePort();
    const echoPort = await freePort();
    const connect = await startConnect(serve, { local: [`${sinkPort}:127.0.0.1:${sink.port}`, `${echoPort}:127.0.0.1:${echo.port}`], logLevel: 'info', fastHeartbeat: true });
    await expectEcho(echoPort);
    const baseline = { serve: await rssOf(serve.process.pid), connect: await rssOf(connect.process.pid) };
    const peak = { serve: baseline.serve, connect: baseline.connect };
    const sample = async (): Promise<void> => {
      const [s, c] = await Promise.all([rssOf(serve.process.pid), rssOf(connect.process.pid)]);
      peak.serve = Math.max(peak.serve, s);
      peak.connect = Math.max(peak.connect, c);
    };
    const sampler = setInterval(() => void sample().catch(() => undefined), 50);
    const MiB = 1024 * 1024;
    try {
      // Push at the sink as fast as the tunnel lets us, aiming at 200 MiB.
      const stalled = await dial(sinkPort);
      const writer = keepWriting(stalled, 200 * MiB);
      await waitUntil('the pusher to stall', async () => {
        const before = writer.written();
        await new Promise((resolve) => setTimeout(resolve, 300));
        return writer.written() === before;
      }, 15_000);
      await sample();
      // Flow control held it back: the bytes sit in a few socket buffers and
      // stream windows, and neither process grew by what was pushed.
      expect(writer.written()).toBeLessThan(64 * MiB);
      expect(peak.serve - baseline.serve).toBeLessThan(32 * MiB);
      expect(peak.connect - baseline.connect).toBeLessThan(32 * MiB);

      // Still stalled, still pushing: a 32 MiB round trip through the other forward, verified by hash.
      const payload = randomBytes(32 * MiB);
      const other = await dial(echoPort);
      const received: Buffer[] = [];
      let length = 0;
      const done = new Promise<void>((resolve) =>
        other.on('data', (chunk: Buffer) => {
          received.push(chunk);
          length += chunk.length;
          if (length >= payload.length) resolve();
        }),
      );
      other.end(payload);
      await within(done, 30_000, 'the 32 MiB echo through the same tunnel while the other stream is stalled');
      expect(sha256(Buffer.concat(received))).toBe(sha256(payload));
      expect(stalled.destroyed).toBe(false);
      expect(writer.written()).toBeLessThan(64 * MiB);
    } finally {
      clearInterval(sampler);
    }
    // The echo's 32 MiB passed through both processes without piling up either.
    expect(peak.serve - baseline.serve).toBeLessThan(96 * MiB);
    expect(peak.connect - baseline.connect).toBeLessThan(96 * MiB);
  });
});
