/**
 * The control socket of a running connect and serve (issue 15), as a user
 * drives it: `muxtun status`, `forward add/remove/list` and `session
 * list/close` against real processes. Each test has a runtime dir of its
 * own (XDG_RUNTIME_DIR), so with one muxtun of a kind in it no --control is
 * needed, and no other process's socket is ever seen.
 */
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConnectStatus, ForwardStatus, SessionListResult } from '../../src/control/index.js';
import { fileMode, tempDir } from '../support/fs.js';
import { runMuxtun, spawnMuxtun, startConnect, startServe } from '../support/muxtun.js';
import { dial, echoServer, EchoClient, expectEcho, freePort, relay, sha256 } from '../support/net.js';
import { seededBytes } from '../support/random.js';
import type { TestProcess } from '../support/process.js';
import { waitUntil, within } from '../support/wait.js';

/** A runtime dir for one test: where its muxtuns put their sockets and the commands look. */
async function runtime(): Promise<{ env: NodeJS.ProcessEnv; dir: string }> {
  const base = await tempDir('muxtun-ctl-');
  return { env: { XDG_RUNTIME_DIR: base }, dir: join(base, 'muxtun') };
}

/** `muxtun ...args` in that runtime dir. */
async function muxtun(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { exit, stdout, stderr } = await runMuxtun(args, { env, timeoutMs: 20_000 });
  return { code: exit.code, stdout, stderr };
}

/** Runs a command that must succeed and returns its stdout as JSON. */
async function json<T>(env: NodeJS.ProcessEnv, ...args: string[]): Promise<T> {
  const { code, stdout, stderr } = await muxtun(env, ...args);
  if (code !== 0) throw new Error(`muxtun ${args.join(' ')} exited ${code}: ${stderr}`);
  return JSON.parse(stdout) as T;
}

/** connect with its control socket: open once its log says so (it opens beside the first connection, not before it). */
async function connectWithControl(...args: Parameters<typeof startConnect>): Promise<Awaited<ReturnType<typeof startConnect>>> {
  const connect = await startConnect(...args);
  await connect.process.waitForLog(/^control socket listening/);
  return connect;
}

const socketOf = (dir: string, kind: 'connect' | 'serve', process: TestProcess): string => join(dir, `${kind}-${process.pid}.sock`);

/** Connects to a socket, writes `text`, and collects response lines until `count` arrived. */
async function rawExchange(path: string, text: string, count: number): Promise<Array<{ id: unknown; ok: boolean; error?: { code: string; message: string } }>> {
  const socket = net.connect(path);
  try {
    const lines: string[] = [];
    let buffered = '';
    await within(
      new Promise<void>((resolve, reject) => {
        socket.on('error', reject);
        socket.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          const parts = buffered.split('\n');
          buffered = parts.pop()!;
          lines.push(...parts);
          if (lines.length >= count) resolve();
        });
        socket.write(text);
      }),
      10_000,
      `${count} response lines from ${path}`,
    );
    return lines.map((line) => JSON.parse(line) as { id: unknown; ok: boolean; error?: { code: string; message: string } });
  } finally {
    socket.destroy();
  }
}

describe('forward add and remove on a running connect', () => {
  it('adds and removes -L forwards while a connection on another carries data, without touching it or the session', { timeout: 90_000 }, async () => {
    const { env, dir } = await runtime();
    // The serve has no socket here: `status` finds the one connect without --control.
    const serve = await startServe({ env, args: ['--no-control'] });
    const echo = await echoServer();
    const bulkPort = await freePort();
    const connect = await connectWithControl(serve, { local: [`${bulkPort}:127.0.0.1:${echo.port}`], env });
    expect(await readdir(dir)).toEqual([`connect-${connect.process.pid}.sock`]);
    expect(await fileMode(socketOf(dir, 'connect', connect.process))).toBe(0o600);

    const before = await json<ConnectStatus>(env, 'status', '--json');
    expect(before).toMatchObject({ kind: 'connect', pid: connect.process.pid, server: `127.0.0.1:${serve.port}`, state: 'connected' });
    expect(before.session?.id).toMatch(/^[0-9a-f-]{36}$/);
    // Heartbeats start with the session: its round trips, the last and the smallest, are there at once or soon.
    const timed = await waitUntil('a heartbeat round trip in status', async () => {
      const status = await json<ConnectStatus>(env, 'status', '--json');
      return status.session?.rttMs !== undefined && status.session.minRttMs !== undefined ? status.session : undefined;
    });
    expect(timed.minRttMs).toBeGreaterThanOrEqual(0);
    expect(timed.minRttMs).toBeLessThanOrEqual(timed.rttMs!);
    expect(before.forwards).toEqual([
      expect.objectContaining({ kind: 'L', spec: `127.0.0.1:${bulkPort}:127.0.0.1:${echo.port}`, listening: `127.0.0.1:${bulkPort}` }),
    ]);

    // One connection through the first forward, open from before the first change to after the last,
    // carrying 2 MiB between each change, checked by hash.
    const transfer = await EchoClient.connect(bulkPort);
    let seed = 0;
    const carries = async (): Promise<void> => {
      const sent = seededBytes(2 * 1024 * 1024, ++seed);
      expect(sha256(await transfer.roundTrip(sent, 30_000))).toBe(sha256(sent));
    };
    await carries();
    const [byId, bySpec] = [await freePort(), await freePort()];
    const added: ForwardStatus[] = [];
    for (const port of [byId, bySpec]) {
      const forward = await json<ForwardStatus>(env, 'forward', 'add', '-L', `${port}:127.0.0.1:${echo.port}`, '--json');
      expect(forward).toMatchObject({ kind: 'L', listening: `127.0.0.1:${port}` });
      added.push(forward);
      await expectEcho(port);
      await carries();
    }
    const during = await json<ConnectStatus>(env, 'status', '--json');
    expect(during.forwards.map((forward) => forward.id)).toEqual([before.forwards[0]!.id, added[0]!.id, added[1]!.id]);

    const removedById = await muxtun(env, 'forward', 'remove', added[0]!.id);
    expect(removedById).toMatchObject({ code: 0, stdout: expect.stringContaining(`removed forward ${added[0]!.id}`) });
    await carries();
    // Another spelling of the same spec (bind address left out) names the same forward.
    const removedBySpec = await muxtun(env, 'forward', 'remove', '-L', `${bySpec}:127.0.0.1:${echo.port}`);
    expect(removedBySpec).toMatchObject({ code: 0, stdout: expect.stringContaining(`removed forward ${added[1]!.id}`) });
    await carries();
    await expect(dial(byId)).rejects.toThrow(/ECONNREFUSED/);
    await expect(dial(bySpec)).rejects.toThrow(/ECONNREFUSED/);
    const unknown = await muxtun(env, 'forward', 'remove', '-L', `${bySpec}:127.0.0.1:${echo.port}`);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('ERR_MUXTUN_CONTROL_NOT_FOUND');

    await carries();
    // The forward's counters saw exactly that connection and its bytes (6 round trips of 2 MiB).
    const carried = 6 * 2 * 1024 * 1024;
    expect(during.forwards[0]).toMatchObject({ connections: 1 });
    transfer.destroy();
    const after = await waitUntil('the closed connection in status', async () => {
      const status = await json<ConnectStatus>(env, 'status', '--json');
      return status.forwards[0]?.connections === 0 ? status : undefined;
    });
    const { connections, connectionsTotal, bytesIn, bytesOut, ...same } = after.forwards[0]!;
    expect({ connections, connectionsTotal, bytesIn, bytesOut }).toEqual({ connections: 0, connectionsTotal: 1, bytesIn: carried, bytesOut: carried });
    expect(after.forwards).toHaveLength(1);
    expect(same).toEqual({ id: before.forwards[0]!.id, kind: 'L', spec: before.forwards[0]!.spec, listening: before.forwards[0]!.listening });
    expect(after.session?.id).toBe(before.session?.id);
    expect(connect.process.logs().filter((entry) => entry.msg === 'connected' || entry.msg === 'reconnected')).toHaveLength(1);
  });

  it('answers garbage on the live socket with an error line and changes nothing', { timeout: 60_000 }, async () => {
    const { env, dir } = await runtime();
    const serve = await startServe({ env, args: ['--no-control'] });
    const echo = await echoServer();
    const port = await freePort();
    const connect = await connectWithControl(serve, { local: [`${port}:127.0.0.1:${echo.port}`], env });
    const path = socketOf(dir, 'connect', connect.process);
    const before = await json<ConnectStatus>(env, 'status', '--json');

    const answers = await rawExchange(
      path,
      [
        'this is not json',
        JSON.stringify({ id: 7, method: 'forward.add', params: { kind: 'L', spec: `${await freePort()}:127.0.0.1:${echo.port}`, extra: true } }),
        JSON.stringify({ id: 8, method: 'forward.remove', params: { forward: 42 } }),
        JSON.stringify({ id: 9, method: 'shutdown' }),
        '',
      ].join('\n'),
      4,
    );
    expect(answers.map((answer) => [answer.id, answer.ok, answer.error?.code])).toEqual([
      [null, false, 'ERR_MUXTUN_CONTROL_BAD_REQUEST'],
      [7, false, 'ERR_MUXTUN_CONTROL_BAD_REQUEST'],
      [8, false, 'ERR_MUXTUN_CONTROL_BAD_REQUEST'],
      [9, false, 'ERR_MUXTUN_CONTROL_UNKNOWN_METHOD'],
    ]);

    const after = await json<ConnectStatus>(env, 'status', '--json');
    expect(after.forwards).toEqual(before.forwards);
    await expectEcho(port);
    expect(connect.process.alive).toBe(true);
  });
});

describe('forward add -R', () => {
  it('fails with the server\'s reason and exit code 1 when its policy refuses, and listens on the server when it allows', { timeout: 60_000 }, async () => {
    const { env, dir } = await runtime();
    const [allowed, refused] = [await freePort(), await freePort()];
    const serve = await startServe({ env, args: ['--no-control', '--allow-remote', String(allowed)] });
    const echo = await echoServer();
    const connect = await connectWithControl(serve, { local: [`${await freePort()}:127.0.0.1:${echo.port}`], env, args: ['--control', join(dir, 'mine.sock')] });
    expect(await readdir(dir)).toEqual(['mine.sock']);

    // --control on the command too: the socket is not at its default name, so discovery would not find it.
    const control = ['--control', join(dir, 'mine.sock')];
    const denied = await muxtun(env, 'forward', 'add', '-R', `${refused}:127.0.0.1:${echo.port}`, ...control);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`-R 0.0.0.0:${refused}:127.0.0.1:${echo.port}: the server's --allow-remote does not include port ${refused}`);
    expect(denied.stderr).toContain('[ERR_MUXTUN_POLICY]');
    const list = await json<{ forwards: ForwardStatus[] }>(env, 'forward', 'list', '--json', ...control);
    expect(list.forwards.map((forward) => forward.kind)).toEqual(['L']);

    const granted = await json<ForwardStatus>(env, 'forward', 'add', '-R', `${allowed}:127.0.0.1:${echo.port}`, '--json', ...control);
    expect(granted).toMatchObject({ kind: 'R', spec: `0.0.0.0:${allowed}:127.0.0.1:${echo.port}`, listening: `0.0.0.0:${allowed}` });
    await expectEcho(allowed);
    expect(connect.process.alive).toBe(true);
  });
});

describe('session list and close on a running serve', () => {
  it('lists sessions by user; closing one ends that connect with the reason, and the other client carries on', { timeout: 60_000 }, async () => {
    const { env, dir } = await runtime();
    const files = await tempDir('muxtun-ctl-users-');
    const users = join(files, 'users.toml');
    const token = async (name: string): Promise<string> => {
      const added = await muxtun(env, 'users', 'add', name, '--users', users);
      if (added.code !== 0) throw new Error(added.stderr);
      return added.stdout.trim();
    };
    const [alice, bob] = [await token('alice'), await token('bob')];
    const serveProcess = spawnMuxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', join(files, 'state'), '--users', users, '--log-format', 'json'], { name: 'serve', env });
    const port = Number(await serveProcess.waitForStdout('the "listening on" line', (line) => /^muxtun server listening on .*:(\d+)$/.exec(line)?.[1]));
    const fingerprint = await serveProcess.waitForStdout('the fingerprint line', (line) => /^fingerprint: (sha256:[0-9a-f]{64})/.exec(line)?.[1]);
    const server = { port, fingerprint };
    expect(await fileMode(socketOf(dir, 'serve', serveProcess))).toBe(0o600);

    const echo = await echoServer();
    const [alicePort, bobPort] = [await freePort(), await freePort()];
    // Both connects have sockets of their own beside the serve's: `session` looks only at serves.
    const aliceConnect = await connectWithControl({ ...server, token: alice }, { local: [`${alicePort}:127.0.0.1:${echo.port}`], env });
    const bobConnect = await connectWithControl({ ...server, token: bob }, { local: [`${bobPort}:127.0.0.1:${echo.port}`], env });
    const bobOpen = await EchoClient.connect(bobPort);
    await bobOpen.roundTrip('before');

    const listed = await json<SessionListResult>(env, 'session', 'list', '--json');
    expect(listed.sessions.map((session) => session.user).sort()).toEqual(['alice', 'bob']);
    const aliceSession = listed.sessions.find((session) => session.user === 'alice')!;
    expect(aliceSession).toMatchObject({ state: 'active', remoteAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    // The client's status names the same session.
    const aliceStatus = await json<ConnectStatus>(env, 'status', '--json', '--control', socketOf(dir, 'connect', aliceConnect.process));
    expect(aliceStatus.session?.id).toBe(aliceSession.id);

    const closed = await muxtun(env, 'session', 'close', aliceSession.id, '--reason', 'maintenance window');
    expect(closed).toMatchObject({ code: 0, stdout: expect.stringContaining(`closed session ${aliceSession.id} (alice, from 127.0.0.1:`) });
    const aliceExit = await aliceConnect.process.waitForExit(15_000);
    expect(aliceExit.code).toBe(1);
    const aliceOutput = aliceConnect.process.stderr.join('\n');
    expect(aliceOutput).toContain('the server closed this session: maintenance window [ERR_MUXTUN_SESSION_CLOSED]');
    expect(aliceConnect.process.logs().filter((entry) => /reconnect/.test(entry.msg))).toEqual([]);
    expect(existsSync(socketOf(dir, 'connect', aliceConnect.process))).toBe(false);

    await bobOpen.roundTrip('after alice went');
    const left = await json<SessionListResult>(env, 'session', 'list', '--json');
    expect(left.sessions.map((session) => session.user)).toEqual(['bob']);
    const again = await muxtun(env, 'session', 'close', aliceSession.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('ERR_MUXTUN_CONTROL_NOT_FOUND');
    expect(bobConnect.process.alive).toBe(true);
  });
});

describe('session close on a detached session', () => {
  it('ends it at once, and its client hears the reason when it comes back to resume', { timeout: 60_000 }, async () => {
    const { env, dir } = await runtime();
    const serve = await startServe({ env });
    const path = await relay(serve.port);
    const echo = await echoServer();
    const connect = await startConnect(serve, { port: path.port, local: [`${await freePort()}:127.0.0.1:${echo.port}`], env, args: ['--no-control'], fastHeartbeat: true });
    expect(await readdir(dir)).toEqual([`serve-${serve.process.pid}.sock`]);
    const serveAfter = serve.process.mark();
    path.cut();
    await serve.process.waitForLog('session detached; keeping it for resume', { after: serveAfter });
    const [detached] = (await json<SessionListResult>(env, 'session', 'list', '--json')).sessions;
    expect(detached).toMatchObject({ state: 'detached', remoteAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });

    // A prefix of the id is enough.
    const closed = await muxtun(env, 'session', 'close', detached!.id.slice(0, 8), '--reason', 'you were away too long');
    expect(closed.code).toBe(0);
    expect((await json<SessionListResult>(env, 'session', 'list', '--json')).sessions).toEqual([]);
    path.restore();
    const exit = await connect.process.waitForExit(20_000);
    expect(exit.code).toBe(1);
    expect(connect.process.stderr.join('\n')).toContain('the server closed this session: you were away too long [ERR_MUXTUN_SESSION_CLOSED]');
  });
});

describe('where the control socket goes', () => {
  it('runs without a default socket it cannot make, with a warning; a --control FILE it cannot make is exit 1', { timeout: 60_000 }, async () => {
    const base = await tempDir('muxtun-ctl-bad-');
    const notADir = join(base, 'file');
    await writeFile(notADir, '');
    const serve = await startServe({ env: { XDG_RUNTIME_DIR: notADir } });
    const warning = await serve.process.waitForLog(/^no control socket/);
    expect(String(warning.error)).toContain('ERR_MUXTUN_CONTROL_SOCKET');
    expect(serve.process.alive).toBe(true);

    const chosen = await runMuxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', join(base, 'state'), '--control', join(notADir, 'ctl.sock')], { timeoutMs: 20_000 });
    expect(chosen.exit.code).toBe(1);
    expect(chosen.stderr).toContain('ERR_MUXTUN_CONTROL_SOCKET');
  });
});
