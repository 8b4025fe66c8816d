/**
 * Session resumption with real processes: connect reaches serve through a
 * relay that the tests cut (reset or FIN), blackhole (only the heartbeat
 * notices) and restore. Forwarded connections, -L and -R, carry on across
 * the drop without a lost, repeated or reordered byte; connections opened
 * while the link is down are served after the resume, or reset after 10 s;
 * past serve's --resume-grace, or after a serve restart, the resume is
 * refused, the connections are reset and connect starts a fresh session;
 * --no-resume keeps the old behaviour.
 */
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startConnect, startServe, type Connect, type Serve } from '../support/muxtun.js';
import { connectionEnd, dial, EchoClient, echoServer, exchange, freePort, listen, relay, type Relay } from '../support/net.js';
import { LogLevel, type LogEntry } from '../support/process.js';
import { Scope } from '../support/scope.js';
import { waitUntil, within } from '../support/wait.js';

const MiB = 1024 * 1024;

/** connect's reconnect backoff is capped at this (--reconnect-max), so a restored link is retried within it. */
const BACKOFF_CAP_MS = 1_000;

/** connect's log lines of a resume (message formats of the interface). */
const LINK_LOST = /^link lost \((.+)\); resuming (\d+) connections?$/;
const RESUMED = /^resumed after \d+\.\d s: (\d+) connections? kept, .+ re-sent$/;
const REFUSED = /^resume refused \((.+)\): (\d+) connections? lost$/;

interface Rig {
  serve: Serve;
  path: Relay;
  connect: Connect;
  /** The -L port on connect's side. */
  local: number;
  /** The -R port on serve's side. */
  remote: number;
}

/**
 * serve, a relay in front of it, and connect through the relay with one -L
 * (to `localTarget`, dialled by serve) and one -R on a fixed port (to
 * `remoteTarget`, dialled by connect). connect has the fast heartbeat
 * (a silent link is noticed in about 2 s) and retries at least every second.
 */
async function rig(scope: Scope, options: { localTarget: number; remoteTarget: number; serveArgs?: string[]; connectArgs?: string[] }): Promise<Rig> {
  const serve = await startServe({ scope, args: options.serveArgs ?? [] });
  const path = await relay(serve.port, scope);
  const [local, remote] = await Promise.all([freePort(), freePort()]);
  const connect = await startConnect(serve, {
    scope,
    port: path.port,
    local: [`${local}:127.0.0.1:${options.localTarget}`],
    remote: [`127.0.0.1:${remote}:127.0.0.1:${options.remoteTarget}`],
    fastHeartbeat: true,
    args: ['--reconnect-max', String(BACKOFF_CAP_MS / 1000), ...(options.connectArgs ?? [])],
  });
  return { serve, path, connect, local, remote };
}

/** The next "link lost" line after `after`, checked against the interface: a warning naming the reason and the connections it keeps. */
async function linkLost(connect: Connect, after: number, timeoutMs = 10_000): Promise<LogEntry> {
  const entry = await connect.process.waitForLog(/^link lost /, { after, timeoutMs });
  expect(entry.msg, connect.process.tail()).toMatch(LINK_LOST);
  expect(entry.level).toBe(LogLevel.warn);
  expect(typeof entry.reason).toBe('string');
  expect(entry.msg).toBe(`link lost (${String(entry.reason)}); resuming ${String(entry.connections)} ${entry.connections === 1 ? 'connection' : 'connections'}`);
  return entry;
}

/** The next "resumed after" line after `after`, checked against the interface. */
async function resumed(connect: Connect, after: number, timeoutMs = 15_000): Promise<LogEntry> {
  const entry = await connect.process.waitForLog(/^resumed after /, { after, timeoutMs });
  expect(entry.msg, connect.process.tail()).toMatch(RESUMED);
  expect(entry.level).toBe(LogLevel.info);
  expect(typeof entry.afterMs).toBe('number');
  expect(typeof entry.resentBytes).toBe('number');
  expect(Number(RESUMED.exec(entry.msg)![1])).toBe(entry.connections);
  return entry;
}

/** The next "resume refused" line after `after`, checked against the interface. */
async function refused(connect: Connect, after: number, timeoutMs = 15_000): Promise<LogEntry> {
  const entry = await connect.process.waitForLog(/^resume refused /, { after, timeoutMs });
  expect(entry.msg, connect.process.tail()).toMatch(REFUSED);
  expect(entry.level).toBe(LogLevel.warn);
  expect(REFUSED.exec(entry.msg)![1]).toBe(entry.reason);
  expect(Number(REFUSED.exec(entry.msg)![2])).toBe(entry.connections);
  return entry;
}

/** What one end of a {@link transfer} saw. */
interface TransferEnd {
  sentSha256: string;
  receivedSha256: string;
  received: number;
  /** The peer's FIN arrived. */
  sawEnd: boolean;
  error: Error | undefined;
}

/**
 * One end of a bulk transfer, the same at the application and at the
 * target: writes `size` fresh random bytes and a FIN (with backpressure),
 * reads to the peer's FIN, hashing both ways as the bytes pass (nothing is
 * kept). `received` counts as it goes; `done` settles when the socket closes.
 */
function transfer(socket: net.Socket, size: number): { readonly received: number; readonly error: Error | undefined; readonly closed: boolean; done: Promise<TransferEnd> } {
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let received = 0;
  let sawEnd = false;
  let error: Error | undefined;
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    got.update(chunk);
    received += chunk.length;
  });
  socket.on('end', () => (sawEnd = true));
  socket.on('error', (cause: Error) => (error ??= cause));
  let left = size;
  const pump = (): void => {
    while (left > 0 && !socket.destroyed) {
      const chunk = randomBytes(Math.min(64 * 1024, left));
      left -= chunk.length;
      sent.update(chunk);
      const more = socket.write(chunk);
      if (left === 0) socket.end();
      else if (!more) return void socket.once('drain', pump);
    }
  };
  pump();
  const done = new Promise<TransferEnd>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve({ sentSha256: sent.digest('hex'), receivedSha256: got.digest('hex'), received, sawEnd, error });
    }),
  );
  return {
    get received() {
      return received;
    },
    get error() {
      return error;
    },
    get closed() {
      return closed;
    },
    done,
  };
}

describe('64 MiB each way through -L and -R at once, across five drops of the link', () => {
  it('arrives complete and unchanged (sha256), neither end sees an error, connect never starts a new session', { timeout: 120_000 }, async (context) => {
    const scope = new Scope(context);
    const SIZE = 64 * MiB;
    type Transfer = ReturnType<typeof transfer>;
    const localTargets: Transfer[] = [];
    const remoteTargets: Transfer[] = [];
    const localTarget = await listen((socket) => localTargets.push(transfer(socket, SIZE)), scope);
    const remoteTarget = await listen((socket) => remoteTargets.push(transfer(socket, SIZE)), scope);
    const { serve, path, connect, local, remote } = await rig(scope, { localTarget: localTarget.port, remoteTarget: remoteTarget.port });

    const apps = [transfer(await dial(local, { scope }), SIZE), transfer(await dial(remote, { scope }), SIZE)];
    await waitUntil('both targets to be dialled', () => localTargets.length === 1 && remoteTargets.length === 1);
    const all = [...apps, localTargets[0]!, remoteTargets[0]!];

    // Cut while data flows: each time every direction has passed the next mark.
    // Resets and FINs are noticed at once; the blackhole only by connect's heartbeat.
    const drops = ['reset', 'blackhole', 'end', 'reset', 'end'] as const;
    for (const [i, how] of drops.entries()) {
      const mark = (4 + 8 * i) * MiB;
      await waitUntil(`every direction to pass ${mark / MiB} MiB before drop ${i + 1}`, () => {
        const failed = all.find((end) => end.error !== undefined || end.closed);
        if (failed) throw new Error(`a transfer ended before drop ${i + 1} (${failed.error?.message ?? 'closed'}, ${failed.received} bytes in)\n${connect.process.tail()}`);
        return Math.min(...all.map((end) => end.received)) >= mark;
      }, 60_000, 10);
      const after = connect.process.mark();
      const serveAfter = serve.process.mark();
      if (how === 'blackhole') {
        expect(path.blackhole()).toBe(1);
      } else {
        // After the blackhole, the silenced old link may still be held until connect's socket gives up on it.
        expect(path.cut(how)).toBeGreaterThanOrEqual(1);
        // The link stays down this long (connect's attempts meanwhile are refused).
        await sleep(300);
        path.restore();
      }
      const lost = await linkLost(connect, after);
      expect(lost.connections).toBe(2);
      const back = await resumed(connect, after);
      expect(back.connections).toBe(2);
      // What the blackhole swallowed was on its way, unacknowledged: it had to be sent again.
      if (how === 'blackhole') expect(back.resentBytes).toBeGreaterThan(0);
      const onServe = await serve.process.waitForLog('session resumed', { after: serveAfter });
      expect(typeof onServe.sessionId).toBe('string');
      expect(typeof onServe.afterMs).toBe('number');
    }

    const [localApp, remoteApp, localEnd, remoteEnd] = await within(Promise.all(all.map((end) => end.done)), 90_000, `every transfer to complete\n${connect.process.tail()}`);
    for (const end of [localApp, remoteApp, localEnd, remoteEnd]) {
      expect(end.error).toBeUndefined();
      expect(end.sawEnd).toBe(true);
      expect(end.received).toBe(SIZE);
    }
    expect(localEnd.receivedSha256).toBe(localApp.sentSha256);
    expect(localApp.receivedSha256).toBe(localEnd.sentSha256);
    expect(remoteEnd.receivedSha256).toBe(remoteApp.sentSha256);
    expect(remoteApp.receivedSha256).toBe(remoteEnd.sentSha256);

    // Every loss was resumed (a heartbeat miss under load would be one more, resumed too); never a new session.
    const logs = connect.process.logs();
    const losses = logs.filter((entry) => LINK_LOST.test(entry.msg)).length;
    expect(losses).toBeGreaterThanOrEqual(drops.length);
    expect(logs.filter((entry) => RESUMED.test(entry.msg)).length).toBe(losses);
    expect(logs.filter((entry) => entry.msg === 'reconnected' || REFUSED.test(entry.msg) || entry.level >= LogLevel.error), connect.process.tail()).toEqual([]);
    expect(logs.filter((entry) => entry.msg === 'connected')).toHaveLength(1);
    expect(connect.process.alive && serve.process.alive).toBe(true);
  });
});

describe.concurrent('session resumption', () => {
  it('an interactive -L connection (64 bytes each 100 ms) answers across a 1 s cut, the longest wait below outage + backoff + 1 s', { timeout: 30_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const { path, connect, local } = await rig(scope, { localTarget: echo.port, remoteTarget: echo.port });
    const client = await EchoClient.connect(local, scope);
    const answeredAt: number[] = [];
    let stop = false;
    const conversation = (async () => {
      while (!stop) {
        const asked = performance.now();
        const request = randomBytes(64);
        const answer = await client.roundTrip(request, 10_000);
        if (!answer.equals(request)) throw new Error(`answer ${answeredAt.length + 1} differs from its request`);
        answeredAt.push(performance.now());
        await sleep(Math.max(0, 100 - (performance.now() - asked)));
      }
    })();
    conversation.catch(() => undefined); // awaited below

    await waitUntil('ten answers before the cut', () => answeredAt.length >= 10);
    const after = connect.process.mark();
    const cutAt = performance.now();
    expect(path.cut()).toBe(1);
    // The link stays down this long.
    await sleep(1_000);
    path.restore();
    const outageMs = performance.now() - cutAt;
    expect((await linkLost(connect, after)).connections).toBe(1);
    expect((await resumed(connect, after)).connections).toBe(1);
    const answersAtResume = answeredAt.length;
    await waitUntil('ten answers after the resume', () => answeredAt.length >= answersAtResume + 10);
    stop = true;
    await within(conversation, 12_000, 'the conversation to finish its last round trip');

    const gaps = answeredAt.slice(1).map((at, i) => at - answeredAt[i]!);
    const longest = Math.max(...gaps);
    expect(longest).toBeLessThan(outageMs + BACKOFF_CAP_MS + 1_000);
    // The outage shows as one long wait, not as a failure: the other answers kept their pace.
    expect(gaps.filter((gap) => gap > 1_000)).toHaveLength(1);
    expect(client.error).toBeUndefined();
    expect(client.socket.destroyed).toBe(false);
  });

  it('-L and -R connections opened while the link is down are served once it resumes', { timeout: 30_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const { serve, path, connect, local, remote } = await rig(scope, { localTarget: echo.port, remoteTarget: echo.port });
    const established = await EchoClient.connect(local, scope);
    expect((await established.roundTrip('before')).toString()).toBe('before');

    const after = connect.process.mark();
    const serveAfter = serve.process.mark();
    expect(path.cut()).toBe(1);
    await linkLost(connect, after);
    const detached = await serve.process.waitForLog('session detached; keeping it for resume', { after: serveAfter });
    expect(detached.graceS).toBe(60);
    // Opened now, both wait for the session (connect's -L listener and serve's -R port stay open), their requests held.
    const [lateLocal, lateRemote] = await Promise.all([EchoClient.connect(local, scope), EchoClient.connect(remote, scope)]);
    const answers = [lateLocal.roundTrip('opened during the outage (-L)', 10_000), lateRemote.roundTrip('opened during the outage (-R)', 10_000), established.roundTrip('written during the outage', 10_000)];
    // The link stays down this long.
    await sleep(1_000);
    path.restore();
    await resumed(connect, after);
    expect((await Promise.all(answers)).map(String)).toEqual(['opened during the outage (-L)', 'opened during the outage (-R)', 'written during the outage']);
    for (const client of [lateLocal, lateRemote, established]) {
      expect((await client.roundTrip('after')).toString()).toBe('after');
      expect(client.error).toBeUndefined();
    }
    expect(connect.process.logs(after).filter((entry) => entry.msg === 'reconnected')).toEqual([]);
  });

  it('-L and -R connections opened during an outage longer than 10 s are reset after 10 s; the session still resumes', { timeout: 40_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const { path, connect, local, remote } = await rig(scope, { localTarget: echo.port, remoteTarget: echo.port });
    const established = await EchoClient.connect(local, scope);
    expect((await established.roundTrip('before')).toString()).toBe('before');

    const after = connect.process.mark();
    expect(path.cut()).toBe(1);
    await linkLost(connect, after);
    const opened = performance.now();
    const [lateLocal, lateRemote] = await Promise.all([EchoClient.connect(local, scope), EchoClient.connect(remote, scope)]);
    lateLocal.socket.write('waiting (-L)');
    lateRemote.socket.write('waiting (-R)');
    const ends = await Promise.all([lateLocal, lateRemote].map(async (client) => {
      const how = await connectionEnd(client.socket, 15_000);
      return { how, afterMs: performance.now() - opened };
    }));
    for (const end of ends) {
      expect(end.how).toBe('reset');
      expect(end.afterMs).toBeGreaterThan(9_000);
      expect(end.afterMs).toBeLessThan(13_000);
    }
    // The link was down all along; the session it held survives the 10 s wait of new connections.
    expect(path.down).toBe(true);
    path.restore();
    await resumed(connect, after);
    expect((await established.roundTrip('after a long outage')).toString()).toBe('after a long outage');
    expect(established.error).toBeUndefined();
  });

  it('past serve --resume-grace the session is dropped: its connections are reset, connect is refused, starts afresh and its -R port works again', { timeout: 40_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const { serve, path, connect, local, remote } = await rig(scope, { localTarget: echo.port, remoteTarget: echo.port, serveArgs: ['--resume-grace', '2'] });
    const [openLocal, openRemote] = await Promise.all([EchoClient.connect(local, scope), EchoClient.connect(remote, scope)]);
    expect((await openLocal.roundTrip('-L before')).toString()).toBe('-L before');
    expect((await openRemote.roundTrip('-R before')).toString()).toBe('-R before');

    const after = connect.process.mark();
    const serveAfter = serve.process.mark();
    const cutAt = performance.now();
    expect(path.cut()).toBe(1);
    expect((await linkLost(connect, after)).connections).toBe(2);
    expect((await serve.process.waitForLog('session detached; keeping it for resume', { after: serveAfter })).graceS).toBe(2);
    const expired = await serve.process.waitForLog('detached session expired; its connections were reset', { after: serveAfter, timeoutMs: 6_000 });
    expect(expired.level).toBe(LogLevel.warn);
    expect(expired.connections).toBe(2);
    expect(performance.now() - cutAt).toBeGreaterThan(1_500);
    // serve reset the -R connection it held, while the link was still down...
    await within(openRemote.ended, 2_000, `the open -R connection to be reset at the expiry\n${serve.process.tail()}`);
    expect(path.down).toBe(true);
    // ...while connect, which cannot know yet, still holds the -L one.
    expect(openLocal.socket.destroyed).toBe(false);

    // The link stays down about 4 s in all.
    await sleep(Math.max(0, 4_000 - (performance.now() - cutAt)));
    path.restore();
    const refusal = await refused(connect, after);
    expect(String(refusal.reason)).toMatch(/^expired\b/);
    expect(refusal.connections).toBe(2);
    await within(openLocal.ended, 5_000, `the open -L connection to be ended after the refusal\n${connect.process.tail()}`);
    for (const client of [openLocal, openRemote]) expect(client.error !== undefined || client.socket.readableEnded).toBe(true);

    await connect.process.waitForLog('reconnected', { after, timeoutMs: 10_000 });
    await connect.process.waitForLog('-R listening on the server', { after, where: (entry) => String(entry.forward).includes(`:${remote} ->`) });
    expect((await exchange(remote, '-R after')).toString()).toBe('-R after');
    expect((await exchange(local, '-L after')).toString()).toBe('-L after');
    expect(connect.process.logs(after).filter((entry) => RESUMED.test(entry.msg))).toEqual([]);
  });

  it('serve SIGKILLed and restarted: the resume is refused (unknown session), open connections are reset, the forwards come back', { timeout: 45_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const first = await startServe({ scope, name: 'serve (first run)' });
    const [local, remote] = await Promise.all([freePort(), freePort()]);
    const connect = await startConnect(first, {
      scope,
      local: [`${local}:127.0.0.1:${echo.port}`],
      remote: [`127.0.0.1:${remote}:127.0.0.1:${echo.port}`],
      fastHeartbeat: true,
      args: ['--reconnect-max', String(BACKOFF_CAP_MS / 1000)],
    });
    const [openLocal, openRemote] = await Promise.all([EchoClient.connect(local, scope), EchoClient.connect(remote, scope)]);
    expect((await openLocal.roundTrip('-L before')).toString()).toBe('-L before');
    expect((await openRemote.roundTrip('-R before')).toString()).toBe('-R before');
    const localEnd = connectionEnd(openLocal.socket, 30_000);

    const after = connect.process.mark();
    first.process.signal('SIGKILL');
    await first.process.waitForExit();
    expect((await linkLost(connect, after)).connections).toBe(2);
    // The -R connection died with serve's process; connect keeps the -L one, hoping to resume.
    await within(openRemote.ended, 5_000, 'the open -R connection to end with serve');
    expect(openLocal.socket.destroyed).toBe(false);

    const second = await startServe({ scope, name: 'serve (second run)', port: first.port, stateDir: first.stateDir });
    const refusal = await refused(connect, after);
    expect(String(refusal.reason)).toMatch(/^unknown session/);
    expect(refusal.connections).toBe(2);
    expect(await localEnd).toBe('reset');

    await connect.process.waitForLog('reconnected', { after, timeoutMs: 10_000 });
    await connect.process.waitForLog('-R listening on the server', { after, where: (entry) => String(entry.forward).includes(`:${remote} ->`) });
    expect((await exchange(local, '-L after')).toString()).toBe('-L after');
    expect((await exchange(remote, '-R after')).toString()).toBe('-R after');
    await second.process.waitForLog('client authenticated');
    expect(connect.process.alive).toBe(true);
  });

  it('connect --no-resume: a cut resets the open -L and -R connections, as before resumption existed', { timeout: 30_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const { serve, path, connect, local, remote } = await rig(scope, { localTarget: echo.port, remoteTarget: echo.port, connectArgs: ['--no-resume'] });
    const [openLocal, openRemote] = await Promise.all([EchoClient.connect(local, scope), EchoClient.connect(remote, scope)]);
    expect((await openLocal.roundTrip('-L before')).toString()).toBe('-L before');
    expect((await openRemote.roundTrip('-R before')).toString()).toBe('-R before');
    const ends = [connectionEnd(openLocal.socket, 5_000), connectionEnd(openRemote.socket, 5_000)];

    const after = connect.process.mark();
    const serveAfter = serve.process.mark();
    expect(path.cut()).toBe(1);
    await connect.process.waitForLog('session to the server lost', { after });
    // Reset at once, by connect (-L) and by serve (-R), though the link is still down.
    expect(await Promise.all(ends)).toEqual(['reset', 'reset']);
    expect(path.down).toBe(true);

    path.restore();
    await connect.process.waitForLog('reconnected', { after, timeoutMs: 10_000 });
    await connect.process.waitForLog('-R listening on the server', { after, where: (entry) => String(entry.forward).includes(`:${remote} ->`) });
    expect((await exchange(local, '-L after')).toString()).toBe('-L after');
    expect((await exchange(remote, '-R after')).toString()).toBe('-R after');
    expect(connect.process.logs(after).filter((entry) => LINK_LOST.test(entry.msg) || RESUMED.test(entry.msg))).toEqual([]);
    expect(serve.process.logs(serveAfter).filter((entry) => entry.msg.startsWith('session detached'))).toEqual([]);
  });
});
