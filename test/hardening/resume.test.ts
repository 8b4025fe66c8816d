/**
 * Session resumption against abuse and memory pressure, in process: a
 * resume hello with a wrong secret, or another client's secret, for a
 * session that is not its own is refused and leaves that session alone;
 * and a link that drops while targets stop reading keeps the replay held on
 * both sides within its per-connection bound, loses nothing, and frees it
 * all once the data is through.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { TunnelClient, TunnelServer } from '../../src/tunnel/index.js';
import { defaultResumeConfig } from '../../src/tunnel/resume/config.js';
import { dial, EchoClient, echoServer, expectEcho, freePort, relay, sinkServer } from '../support/net.js';
import { forward, rawSession, sendHello, startTunnelClient, startTunnelServer, type RecordingLogger } from '../support/tunnel.js';
import { waitUntil, within } from '../support/wait.js';

const MiB = 1024 * 1024;

// The resume fields of stats(), as the interface gives them (typed here so these tests compile before src/tunnel has them).
type ServerStats = ReturnType<TunnelServer['stats']> & { detachedSessions: number; replayBytes: number };
type ClientStats = ReturnType<TunnelClient['stats']> & { replayBytes: number; conns: number };
const serverStats = (server: TunnelServer): ServerStats => server.stats() as ServerStats;
const clientStats = (client: TunnelClient): ClientStats => client.stats() as ClientStats;

const logged = (logger: RecordingLogger, prefix: string): boolean => logger.entries.some((entry) => entry.msg.startsWith(prefix));

/** Resolves when the socket has closed. */
const closed = (socket: tls.TLSSocket): Promise<void> => (socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve())));

describe('a resume for a session that is not the sender\'s', () => {
  it('is refused (ERR_MUXTUN_RESUME_REFUSED, connection closed) with a made-up secret or another session\'s secret, and the named session keeps working', async () => {
    const echo = await echoServer();
    const server = await startTunnelServer();
    const localPort = await freePort();
    const { client, logger, ready } = await startTunnelClient(server, { local: [forward(localPort, echo.port)] });
    const open = await EchoClient.connect(localPort);
    expect((await open.roundTrip('before')).toString()).toBe('before');

    // Another client with the token: a hello asking for resume is welcomed with a secret of its own session.
    const other = await rawSession(server.port);
    const otherClientId = randomUUID();
    const { reader: otherReader } = sendHello(other.session, { type: 'hello', version: 1, token: server.token, clientId: otherClientId, resume: true });
    const welcome = await otherReader.next('welcome');
    expect(welcome.resume, `the welcome of a hello with "resume": true: ${JSON.stringify(welcome)}`).toMatchObject({ secret: expect.any(String), graceMs: expect.any(Number) });
    const grant = welcome.resume as { secret: string; graceMs: number };
    expect(grant.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(grant.secret, 'base64url')).toHaveLength(32);
    expect(grant.graceMs).toBe(60_000);
    expect(welcome.sessionId).not.toBe(ready.sessionId);

    const attempts = [
      { name: "the victim's own clientId and a made-up secret", clientId: client.clientId, secret: randomBytes(32).toString('base64url') },
      { name: "another client's genuine secret (of its own session)", clientId: otherClientId, secret: grant.secret },
    ];
    for (const attempt of attempts) {
      const { session, socket } = await rawSession(server.port);
      const { reader } = sendHello(session, {
        type: 'hello',
        version: 1,
        token: server.token,
        clientId: attempt.clientId,
        resume: true,
        resumeSession: { sessionId: ready.sessionId, secret: attempt.secret },
      });
      const refusal = await reader.next('error');
      expect(refusal.code, attempt.name).toBe('ERR_MUXTUN_RESUME_REFUSED');
      expect(typeof refusal.message).toBe('string');
      await within(closed(socket), 5_000, `the connection of the refused resume (${attempt.name}) to be closed`);
      expect(reader.messages.map((message) => message.type), attempt.name).toEqual(['error']);

      // The session it named is untouched: its open connection and new ones are served.
      expect((await open.roundTrip(`after ${attempt.name}`)).toString()).toBe(`after ${attempt.name}`);
      await expectEcho(localPort);
    }
    expect(open.error).toBeUndefined();
    expect(clientStats(client).connected).toBe(true);
    expect(logged(logger, 'link lost')).toBe(false);
    expect(serverStats(server.server).detachedSessions).toBe(0);
    // Neither attempt replaced the victim's session (as a plain hello with its clientId would).
    expect(server.logger.entries.filter((entry) => entry.fields.reason === 'replaced by a new session of the same client')).toEqual([]);
    // The other client's session, whose secret was tried elsewhere, is up too.
    expect(otherReader.ended).toBe(false);
  });
});

/** Writes `total` fresh random bytes and a FIN with backpressure, hashing them; `written` counts what the socket took. */
function push(socket: net.Socket, total: number): { readonly written: number; sha256: () => string } {
  const hash = createHash('sha256');
  let written = 0;
  socket.resume(); // nothing comes back; read and drop
  const pump = (): void => {
    while (written < total && !socket.destroyed) {
      const chunk = randomBytes(Math.min(64 * 1024, total - written));
      written += chunk.length;
      hash.update(chunk);
      const more = socket.write(chunk);
      if (written === total) socket.end();
      else if (!more) return void socket.once('drain', pump);
    }
  };
  pump();
  return {
    get written() {
      return written;
    },
    sha256: () => hash.copy().digest('hex'),
  };
}

/** A target connection held unread until `read()`; then hashes what arrives up to the FIN. */
function heldTarget(socket: net.Socket): { read: () => void; done: Promise<{ bytes: number; sha256: string }> } {
  socket.pause();
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  const done = new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    socket.once('close', () => reject(new Error(`the target connection closed without a FIN after ${bytes} bytes`)));
  });
  done.catch(() => undefined); // awaited below
  return { read: () => socket.resume(), done };
}

describe('replay memory across a drop', () => {
  it('with -L and -R targets that stop reading and the link cut: replay stays within its bound per connection on each side, everything arrives, replay drains to 0', { timeout: 60_000 }, async () => {
    const bound = defaultResumeConfig.maxReplayBytes;
    const TOTAL = 32 * MiB;
    const sink = await sinkServer();
    const server = await startTunnelServer();
    const path = await relay(server.port);
    const [localPort, remotePort] = await Promise.all([freePort(), freePort()]);
    const { client, logger } = await startTunnelClient(server, {
      port: path.port,
      local: [forward(localPort, sink.port)],
      remote: [forward(remotePort, sink.port)],
      timings: { backoffBaseMs: 50, backoffCapMs: 250 },
    });

    // Upload through -L (held by the client's replay), then through -R (held by the server's); one target each, in that order.
    const localApp = await dial(localPort);
    const localWriter = push(localApp, TOTAL);
    const localTarget = heldTarget((await within(sink.nextConnection(), 5_000, 'the -L target to be dialled')).socket);
    const remoteApp = await dial(remotePort);
    const remoteWriter = push(remoteApp, TOTAL);
    const remoteTarget = heldTarget((await within(sink.nextConnection(), 5_000, 'the -R target to be dialled')).socket);

    // The worst each side held, sampled throughout (stats() is synchronous: each sample is a consistent state).
    const peak = { client: 0, server: 0 };
    const sample = (): void => {
      peak.client = Math.max(peak.client, clientStats(client).replayBytes);
      peak.server = Math.max(peak.server, serverStats(server.server).replayBytes);
    };
    const sampler = setInterval(sample, 5);
    const stalled = async (what: string): Promise<void> => {
      let before = -1;
      await waitUntil(what, () => {
        const now = localWriter.written + remoteWriter.written;
        const still = now === before;
        before = now;
        return still;
      }, 20_000, 300);
    };
    try {
      await stalled('both writers to stall behind the unread targets');
      expect(path.cut()).toBe(1);
      await waitUntil('the client to see the link lost', () => logged(logger, 'link lost'));
      await waitUntil('the server to hold the session detached', () => serverStats(server.server).detachedSessions === 1);
      const detached = clientStats(client);
      expect(detached.connected).toBe(false);
      expect(detached.conns).toBe(2);
      // Detached, both sides read on into replay up to the bound, then TCP holds the writers back.
      await stalled('both writers to stall again while the link is down');
      // The link stays down a while longer, the writers still trying: the bounds must hold over time, not once.
      await sleep(1_000);
      sample();
      expect(peak.client).toBeLessThanOrEqual(bound);
      expect(peak.server).toBeLessThanOrEqual(bound);
      expect(peak.client).toBeGreaterThan(0);
      expect(peak.server).toBeGreaterThan(0);
      expect(localWriter.written).toBeLessThan(TOTAL);
      expect(remoteWriter.written).toBeLessThan(TOTAL);
      expect(localApp.writableLength + remoteApp.writableLength).toBeGreaterThan(0);

      path.restore();
      await waitUntil('the client to resume', () => logged(logger, 'resumed after'), 10_000);
      expect(logged(logger, 'resume refused')).toBe(false);
      expect(serverStats(server.server).detachedSessions).toBe(0);
      localTarget.read();
      remoteTarget.read();
      const [atLocal, atRemote] = await within(Promise.all([localTarget.done, remoteTarget.done]), 30_000, 'both targets to receive everything');
      expect(atLocal).toEqual({ bytes: TOTAL, sha256: localWriter.sha256() });
      expect(atRemote).toEqual({ bytes: TOTAL, sha256: remoteWriter.sha256() });
      await waitUntil('the replay of both sides to drain', () => clientStats(client).replayBytes === 0 && serverStats(server.server).replayBytes === 0, 10_000);
    } finally {
      clearInterval(sampler);
    }
    expect(peak.client).toBeLessThanOrEqual(bound);
    expect(peak.server).toBeLessThanOrEqual(bound);
  });
});
