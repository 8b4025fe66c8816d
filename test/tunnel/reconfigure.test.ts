/**
 * TunnelClient.reconfigure and add/remove/list of forwards while running,
 * in process with real sockets: forwards added start and removed ones stop
 * (their open connections finish) on the same session, with no reconnect,
 * while a transfer through another forward goes on intact; a -R the server
 * refuses comes back in the report; a bad option changes nothing; and
 * across a dropped link (resumed or not) a removed -R stays gone and one
 * added during the outage is set up once the link is back.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseTargetPattern, type TunnelClient, type TunnelClientOptions } from '../../src/tunnel/index.js';
import { dial, EchoClient, echoOn, echoServer, expectEcho, freePort, listen, relay, sha256, type TestServer } from '../support/net.js';
import { socksConnect, socksRefusal } from '../support/socks.js';
import { forward, startTunnelClient, startTunnelServer, type InProcessServer, type RecordingLogger } from '../support/tunnel.js';
import { rejection, waitUntil, within } from '../support/wait.js';

const MiB = 1024 * 1024;

/** Whether a TCP connection to 127.0.0.1:port is refused (nothing listens). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/**
 * A target that hashes what it receives and, after the client's FIN,
 * answers with the byte count and sha256; so a transfer can be held open
 * across a reconfigure and checked at the end.
 */
function hashingTarget(): Promise<TestServer> {
  return listen((socket) => {
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    socket.on('end', () => socket.end(`${bytes} ${hash.digest('hex')}`));
  });
}

/** An upload through `port` in two halves, the second sent only when `second()` is called; resolves with what the target counted. */
async function splitUpload(port: number, size: number): Promise<{ sent: string; second(): Promise<string> }> {
  const data = randomBytes(size);
  const socket = await dial(port);
  const answer: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => answer.push(chunk));
  const closed = new Promise<void>((resolve, reject) => {
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  const half = size / 2;
  // The first half goes out now and is through the tunnel (in part at least) before the reconfigure.
  socket.write(data.subarray(0, half));
  return {
    sent: `${size} ${sha256(data)}`,
    async second() {
      socket.end(data.subarray(half));
      await within(closed, 30_000, 'the split upload to finish');
      return Buffer.concat(answer).toString();
    },
  };
}

function baseOptions(server: InProcessServer, logger: RecordingLogger, port = server.port): TunnelClientOptions {
  return { host: '127.0.0.1', port, token: server.token, trust: { kind: 'fingerprint', fingerprint: server.fingerprint }, logger };
}

const authenticated = (server: InProcessServer): number => server.logger.entries.filter((e) => e.msg === 'client authenticated').length;

describe('reconfigure while a transfer runs', () => {
  it('adds a -L, a -R and a -D and removes a -L and a -R on the same session: the transfer completes intact, added forwards work, removed ones refuse new connections while open ones finish', { timeout: 60_000 }, async () => {
    const echo = await echoServer();
    const target = await hashingTarget();
    const server = await startTunnelServer();
    const [transferPort, goneLocal, goneRemote, newLocal, newRemote, newSocks] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const { client, logger, ready } = await startTunnelClient(server, {
      local: [forward(transferPort, target.port), forward(goneLocal, echo.port)],
      remote: [forward(goneRemote, echo.port)],
    });
    const before = client.forwards();
    expect(before.map((f) => f.kind)).toEqual(['local', 'local', 'remote']);
    expect(new Set(before.map((f) => f.id)).size).toBe(3);
    expect(before[2]).toMatchObject({ kind: 'remote', state: 'listening', port: goneRemote, error: null });
    let readies = 0;
    client.on('ready', () => readies++);

    const upload = await splitUpload(transferPort, 8 * MiB);
    await within(target.nextConnection(), 5_000, 'the transfer to reach its target');
    // Connections through the forwards about to go, open before they go.
    const viaGoneLocal = await EchoClient.connect(goneLocal);
    const viaGoneRemote = await EchoClient.connect(goneRemote);
    expect((await viaGoneLocal.roundTrip('before -L')).toString()).toBe('before -L');
    expect((await viaGoneRemote.roundTrip('before -R')).toString()).toBe('before -R');

    const report = await client.reconfigure({
      ...baseOptions(server, logger),
      local: [forward(transferPort, target.port), forward(newLocal, echo.port)],
      remote: [forward(newRemote, echo.port)],
      dynamic: [{ bindHost: '127.0.0.1', bindPort: newSocks }],
    });
    expect(report.restartNeeded).toEqual([]);
    expect(report.unchanged).toBe(1);
    expect(report.removed.map((f) => [f.kind, f.spec.bindPort])).toEqual([
      ['local', goneLocal],
      ['remote', goneRemote],
    ]);
    expect(report.added.map((a) => a.ok && [a.forward.kind, a.forward.spec.bindPort])).toEqual([
      ['local', newLocal],
      ['remote', newRemote],
      ['dynamic', newSocks],
    ]);
    expect(report.added[1]).toMatchObject({ ok: true, forward: { state: 'listening', port: newRemote } });

    // The forward left alone is the same one (same id); the new ones have ids never used before.
    const after = client.forwards();
    expect(after.find((f) => f.spec.bindPort === transferPort)?.id).toBe(before[0]!.id);
    const oldIds = new Set(before.map((f) => f.id));
    expect(after.filter((f) => f.spec.bindPort !== transferPort).every((f) => !oldIds.has(f.id))).toBe(true);

    // Added forwards work.
    await expectEcho(newLocal);
    await expectEcho(newRemote);
    const socks = await socksConnect(newSocks, '127.0.0.1', echo.port);
    await echoOn(socks);
    socks.destroy();

    // Removed ones refuse new connections: the -L here at once, the -R on the server once its unlisten is through.
    expect(await refused(goneLocal)).toBe(true);
    await waitUntil('the server to close the removed -R listener', () => refused(goneRemote));
    expect(server.server.stats().remoteListeners).toBe(1);
    // ...while connections opened before go on.
    expect((await viaGoneLocal.roundTrip('after -L')).toString()).toBe('after -L');
    expect((await viaGoneRemote.roundTrip('after -R')).toString()).toBe('after -R');
    expect(viaGoneLocal.error).toBeUndefined();
    expect(viaGoneRemote.error).toBeUndefined();

    // The transfer that spanned it all arrives whole, on the session it started on.
    expect(await upload.second()).toBe(upload.sent);
    expect(readies).toBe(0);
    expect(authenticated(server)).toBe(1);
    expect(client.stats().connected).toBe(true);
    expect(logger.has('link lost') || logger.has('session to the server lost')).toBe(false);
    expect(ready.reconnect).toBe(false);

    for (const text of [`-L 127.0.0.1:${newLocal} -> 127.0.0.1:${echo.port}`, `-R 127.0.0.1:${newRemote} -> 127.0.0.1:${echo.port}`, `-D 127.0.0.1:${newSocks}`]) {
      expect(logger.entries.some((e) => e.level === 'info' && e.fields.forward === text && / added/.test(e.msg)), `"${text}" added, logged`).toBe(true);
    }
    expect(logger.entries.some((e) => e.level === 'info' && e.msg === '-L removed' && e.fields.forward === `-L 127.0.0.1:${goneLocal} -> 127.0.0.1:${echo.port}`)).toBe(true);
    expect(logger.entries.some((e) => e.level === 'info' && e.msg === '-R removed' && e.fields.forward === `-R 127.0.0.1:${goneRemote} -> 127.0.0.1:${echo.port}`)).toBe(true);
    expect(server.logger.has('-R closed: the client withdrew it')).toBe(true);
  });
});

describe('forwards added while running', () => {
  it('a reconfigure without them leaves them running; one its options name becomes theirs and a later reconfigure removes it', async () => {
    const echo = await echoServer();
    const server = await startTunnelServer();
    const [fromOptions, addedLocal, addedRemote] = await Promise.all([freePort(), freePort(), freePort()]);
    const { client, logger } = await startTunnelClient(server, { local: [forward(fromOptions, echo.port)] });
    const local = await client.addForward('local', forward(addedLocal, echo.port));
    const remote = await client.addForward('remote', forward(addedRemote, echo.port));

    const first = await client.reconfigure({ ...baseOptions(server, logger), local: [] });
    expect(first.removed.map((f) => f.spec.bindPort)).toEqual([fromOptions]);
    expect(first.added).toEqual([]);
    expect(client.forwards().map((f) => f.id).sort()).toEqual([local.id, remote.id].sort());
    await expectEcho(addedLocal);
    await expectEcho(addedRemote);
    expect(await refused(fromOptions)).toBe(true);

    const second = await client.reconfigure({ ...baseOptions(server, logger), remote: [forward(addedRemote, echo.port)] });
    expect(second).toMatchObject({ added: [], removed: [], unchanged: 1 });
    const third = await client.reconfigure({ ...baseOptions(server, logger) });
    expect(third.removed.map((f) => f.id)).toEqual([remote.id]);
    await expectEcho(addedLocal);
    expect(authenticated(server)).toBe(1);
  });
});

describe('allowTarget', () => {
  it('a changed allowTarget applies to the next reverse dynamic connection, on the same -R listener', async () => {
    const [echo, other] = await Promise.all([echoServer(), echoServer()]);
    const server = await startTunnelServer();
    const socksPort = await freePort();
    const reverse = { bindHost: '127.0.0.1', bindPort: socksPort, targetHost: '', targetPort: 0, dynamic: true };
    const { client, logger } = await startTunnelClient(server, { remote: [reverse], allowTarget: [parseTargetPattern(`127.0.0.1:${echo.port}`)] });
    await echoOn(await socksConnect(socksPort, '127.0.0.1', echo.port));
    expect(await socksRefusal(socksPort, '127.0.0.1', other.port)).toMatch(/NotAllowed|not allowed/i);

    const report = await client.reconfigure({ ...baseOptions(server, logger), remote: [reverse], allowTarget: [parseTargetPattern(`127.0.0.1:${other.port}`)] });
    expect(report).toMatchObject({ added: [], removed: [], unchanged: 1, allowTargetChanged: true, restartNeeded: [] });
    await echoOn(await socksConnect(socksPort, '127.0.0.1', other.port));
    expect(await socksRefusal(socksPort, '127.0.0.1', echo.port)).toMatch(/NotAllowed|not allowed/i);
    expect(authenticated(server)).toBe(1);
  });
});

describe('what reconfigure refuses', () => {
  it('a -R outside the server\'s allowed ports comes back refused in the report with the server\'s error, and the other changes apply', async () => {
    const echo = await echoServer();
    const server = await startTunnelServer();
    const [localPort, newLocal] = await Promise.all([freePort(), freePort()]);
    const { client, logger } = await startTunnelClient(server, { local: [forward(localPort, echo.port)] });
    const report = await client.reconfigure({
      ...baseOptions(server, logger),
      local: [forward(localPort, echo.port), forward(newLocal, echo.port)],
      // Port 80: below the default --allow-remote (1024-65535).
      remote: [forward(80, echo.port)],
    });
    expect(report.added).toHaveLength(2);
    expect(report.added[0]).toMatchObject({ ok: true, forward: { kind: 'local' } });
    expect(report.added[1]).toMatchObject({ ok: false, kind: 'remote', code: 'ERR_MUXTUN_POLICY', message: expect.stringContaining('80') });
    // Nothing is kept of it: the listing has the two -L, and a later reload with the same file asks again.
    expect(client.forwards().map((f) => f.kind)).toEqual(['local', 'local']);
    expect(logger.entries.some((e) => e.level === 'error' && e.msg.startsWith('-R not added'))).toBe(true);
    await expectEcho(newLocal);

    // The same through addForward: the refusal is the caller's error.
    const error = await rejection(client.addForward('remote', forward(80, echo.port)));
    expect(error.code).toBe('ERR_MUXTUN_POLICY');
    expect(client.forwards()).toHaveLength(2);
  });

  it('an invalid option, or two forwards on one address, throws ERR_MUXTUN_INVALID_ARGUMENT and changes nothing', async () => {
    const echo = await echoServer();
    const server = await startTunnelServer();
    const [localPort, remotePort, otherPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const { client, logger } = await startTunnelClient(server, { local: [forward(localPort, echo.port)], remote: [forward(remotePort, echo.port)] });
    const before = client.forwards();
    const base = baseOptions(server, logger);
    const bad: Array<[string, TunnelClientOptions]> = [
      ['a -L without a target', { ...base, local: [{ bindHost: '127.0.0.1', bindPort: otherPort, targetHost: '', targetPort: 80 }] }],
      ['a bad timing', { ...base, local: [forward(otherPort, echo.port)], timings: { dialTimeoutMs: 0 } }],
      ['two -L on one port', { ...base, local: [forward(otherPort, echo.port), forward(otherPort, echo.port + 1)] }],
      ['a -L and a -D on one port', { ...base, local: [forward(otherPort, echo.port)], dynamic: [{ bindHost: '127.0.0.1', bindPort: otherPort }] }],
      ['two -R on one port', { ...base, remote: [forward(otherPort, echo.port), forward(otherPort, echo.port + 1)] }],
    ];
    for (const [what, options] of bad) {
      const error = await rejection(client.reconfigure(options));
      expect(error.code, what).toBe('ERR_MUXTUN_INVALID_ARGUMENT');
      expect(client.forwards(), what).toEqual(before);
    }
    expect(await refused(otherPort)).toBe(true);
    await expectEcho(localPort);
    await expectEcho(remotePort);
    expect(server.server.stats().remoteListeners).toBe(1);

    // Settings that need a new connection are named, and left as they were.
    const report = await client.reconfigure({ ...base, token: `${server.token}-rotated`, timings: { dialTimeoutMs: 1234 }, local: [forward(localPort, echo.port)], remote: [forward(remotePort, echo.port)] });
    expect(report).toMatchObject({ added: [], removed: [], unchanged: 2, restartNeeded: ['token', 'timings.dialTimeoutMs'] });
    await expectEcho(localPort);
  });
});

describe('forwards across a dropped link', () => {
  for (const resume of [true, false]) {
    it(`${resume ? 'resumed' : 'a fresh session (resume off)'}: a -R removed before the drop or during it is not requested again, one added during the outage is up after it`, { timeout: 60_000 }, async () => {
      const echo = await echoServer();
      const server = await startTunnelServer();
      const path = await relay(server.port);
      const [keptRemote, removedBefore, removedDuring, addedDuring] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
      const timings = { backoffBaseMs: 50, backoffCapMs: 250 };
      const { client, logger } = await startTunnelClient(server, {
        port: path.port,
        resume,
        timings,
        remote: [forward(keptRemote, echo.port), forward(removedBefore, echo.port), forward(removedDuring, echo.port)],
      });
      const base = { ...baseOptions(server, logger, path.port), resume, timings };
      const idOf = (client: TunnelClient, port: number): number => client.forwards().find((f) => f.spec.bindPort === port)!.id;

      const first = await client.reconfigure({ ...base, remote: [forward(keptRemote, echo.port), forward(removedDuring, echo.port)] });
      expect(first.removed.map((f) => f.spec.bindPort)).toEqual([removedBefore]);
      await waitUntil('the removed -R to be closed on the server', () => refused(removedBefore));

      expect(path.cut()).toBeGreaterThan(0);
      await waitUntil('the client to see the link lost', () => logger.has(resume ? 'link lost' : 'session to the server lost'));
      let late: EchoClient | undefined;
      if (resume) {
        // The server keeps the detached session's listeners: a connection made now waits for the client,
        // whose forward is removed before it comes back; the stream for it then is refused.
        await waitUntil('the server to hold the session detached', () => server.server.stats().detachedSessions === 1);
        late = await EchoClient.connect(removedDuring);
      }
      const removedDuringId = idOf(client, removedDuring);
      const during = await client.reconfigure({ ...base, remote: [forward(keptRemote, echo.port), forward(addedDuring, echo.port)] });
      expect(during.removed.map((f) => f.id)).toEqual([removedDuringId]);
      expect(during.added).toEqual([{ ok: true, forward: expect.objectContaining({ kind: 'remote', state: 'pending', port: null }) }]);

      path.restore();
      await waitUntil('the client to be back', () => logger.has(resume ? 'resumed after' : 'reconnected'), 15_000);
      await waitUntil('the -R added during the outage to listen on the server', async () => !(await refused(addedDuring)), 10_000);
      await expectEcho(addedDuring);
      await expectEcho(keptRemote);
      await waitUntil('the -R removed during the outage to be closed on the server', () => refused(removedDuring));
      expect(await refused(removedBefore)).toBe(true);
      expect(server.server.stats().remoteListeners).toBe(2);
      expect(client.forwards().map((f) => [f.spec.bindPort, f.kind === 'remote' && f.state])).toEqual([
        [keptRemote, 'listening'],
        [addedDuring, 'listening'],
      ]);
      // The server never heard a listen for the removed ones again.
      const listened = (port: number): number => server.logger.entries.filter((e) => e.msg === '-R listening' && e.fields.port === port).length;
      expect(listened(removedBefore)).toBe(1);
      expect(listened(removedDuring)).toBe(1);
      expect(listened(addedDuring)).toBe(1);
      expect(listened(keptRemote)).toBe(resume ? 1 : 2);
      if (late) {
        await within(late.ended, 10_000, 'the connection to the removed -R to be ended');
        expect(logger.has('-R stream for a forward this client did not request')).toBe(true);
      }
    });
  }
});
