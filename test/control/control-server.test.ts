/**
 * The control socket over real Unix sockets: its file modes, who may hold a
 * path, and what it answers to good, bad and too many requests. The handlers
 * are fakes; what they do is tested with connect and serve.
 */
import { spawn } from 'node:child_process';
import { chmod, link, lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { requestControl } from '../../src/control/control-client.js';
import { ControlServer, type ControlHandlers } from '../../src/control/control-server.js';
import { ControlNotFoundError, ControlRequestError } from '../../src/control/errors.js';
import { TunnelError } from '../../src/tunnel/errors.js';
import { connectStatus, deferred, forwardR, startFakeControl } from '../support/control.js';
import { fileMode, tempDir } from '../support/fs.js';
import { track } from '../support/scope.js';
import { rejection, within } from '../support/wait.js';

const connectHandlers = (overrides: Partial<ControlHandlers> = {}): ControlHandlers => ({
  status: () => connectStatus,
  listForwards: () => ({ forwards: connectStatus.forwards }),
  ...overrides,
});

interface Response {
  id: unknown;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

/** A client that writes raw bytes and reads response lines, as a script with `socat` would. */
class RawClient {
  readonly socket: net.Socket;
  readonly #lines: string[] = [];
  #buffer = '';
  #wake: (() => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      for (let newline = this.#buffer.indexOf('\n'); newline !== -1; newline = this.#buffer.indexOf('\n')) {
        this.#lines.push(this.#buffer.slice(0, newline));
        this.#buffer = this.#buffer.slice(newline + 1);
      }
      this.#wake?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => this.#wake?.());
  }

  static async open(path: string): Promise<RawClient> {
    const socket = track(net.connect(path));
    await within(new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)), 5_000, `connect to ${path}`);
    return new RawClient(socket);
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next response line, parsed; fails if the connection closes first. */
  async next(timeoutMs = 5_000): Promise<Response> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.socket.destroyed || this.socket.readableEnded) throw new Error('connection closed before a response');
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      await within(woken, Math.max(1, deadline - Date.now()), 'a response line');
    }
    return JSON.parse(this.#lines.shift()!) as Response;
  }

  /** `count` responses, in the order they come. */
  async take(count: number): Promise<Response[]> {
    const responses: Response[] = [];
    for (let i = 0; i < count; i++) responses.push(await this.next());
    return responses;
  }
}

describe('the socket file', () => {
  it('creates a missing directory with mode 0700 and the socket with mode 0600, and removes the socket on close', async () => {
    const path = join(await tempDir(), 'run', 'muxtun', 'connect-1.sock');
    const server = await startFakeControl(connectHandlers(), { path });
    expect(await fileMode(join(path, '..'))).toBe(0o700);
    expect(await fileMode(join(path, '..', '..'))).toBe(0o700);
    expect((await lstat(path)).isSocket()).toBe(true);
    expect(await fileMode(path)).toBe(0o600);
    expect(await requestControl(path, 'status', undefined)).toEqual(connectStatus);
    await server.close();
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    // Nothing else is left in the directory (no temporary bind directory).
    expect(await readdir(join(path, '..'))).toEqual([]);
  });

  it('keeps the mode of a directory that exists already', async () => {
    const dir = await tempDir();
    await chmod(dir, 0o750);
    await startFakeControl(connectHandlers(), { path: join(dir, 'c.sock') });
    expect(await fileMode(dir)).toBe(0o750);
    expect(await fileMode(join(dir, 'c.sock'))).toBe(0o600);
  });

  it('replaces a stale socket file left by a process that died', async () => {
    const dir = await tempDir();
    const path = join(dir, 'connect-1.sock');
    // A socket file nobody listens on: bound under another name, linked, and the listener closed.
    const old = net.createServer();
    await new Promise<void>((resolve) => old.listen(join(dir, 'old'), resolve));
    await link(join(dir, 'old'), path);
    await new Promise<void>((resolve) => old.close(() => resolve()));
    expect((await lstat(path)).isSocket()).toBe(true);

    await startFakeControl(connectHandlers(), { path });
    expect(await requestControl(path, 'status', undefined)).toEqual(connectStatus);
  });

  it('refuses a path a live muxtun listens on, and leaves that one serving', async () => {
    const first = await startFakeControl(connectHandlers());
    const error = await rejection(ControlServer.listen({ path: first.path, kind: 'connect', handlers: connectHandlers() }));
    expect(error.code).toBe('ERR_MUXTUN_CONTROL_IN_USE');
    expect(error.message).toContain(first.path);
    expect(error.message).toContain('--control');
    expect(await requestControl(first.path, 'status', undefined)).toEqual(connectStatus);
  });

  it('does not replace a file that is not a socket', async () => {
    const path = join(await tempDir(), 'notes.txt');
    await writeFile(path, 'keep me');
    const error = await rejection(ControlServer.listen({ path, kind: 'serve', handlers: connectHandlers() }));
    expect(error.code).toBe('ERR_MUXTUN_CONTROL_SOCKET');
    expect(error.message).toMatch(/not a socket/);
    expect(await readFile(path, 'utf8')).toBe('keep me');
  });

  it('refuses a path longer than a Unix socket can have, naming it', async () => {
    const path = join(await tempDir(), 'x'.repeat(120), 'c.sock');
    const error = await rejection(ControlServer.listen({ path, kind: 'connect', handlers: connectHandlers() }));
    expect(error.code).toBe('ERR_MUXTUN_CONTROL_SOCKET');
    expect(error.message).toMatch(/bytes, longer than the 10[37]/);
  });

  it.runIf(process.getuid?.() === 0)('refuses another user by its mode (as root: a child running as nobody)', async () => {
    const dir = await tempDir();
    await chmod(dir, 0o755); // Only the socket's own mode stands in the way.
    const server = await startFakeControl(connectHandlers(), { path: join(dir, 'c.sock') });
    const child = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(server.path)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`], {
      uid: 65534,
      gid: 65534,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += String(chunk)));
    await within(new Promise((resolve) => child.once('exit', resolve)), 10_000, 'the child as nobody');
    expect(output.trim()).toBe('EACCES');
  });
});

describe('requests', () => {
  it('answers each request with its id, several on one connection', async () => {
    const server = await startFakeControl(connectHandlers());
    const client = await RawClient.open(server.path);
    client.send('{"id":1,"method":"status"}\n{"id":"two","method":"forward.list"}\n');
    const responses = await client.take(2);
    expect(responses).toContainEqual({ id: 1, ok: true, result: connectStatus });
    expect(responses).toContainEqual({ id: 'two', ok: true, result: { forwards: connectStatus.forwards } });
  });

  it('answers garbage and unknown methods with errors, changes nothing, and keeps serving that connection and others', async () => {
    const addForward = vi.fn(() => ({ forward: forwardR }));
    const server = await startFakeControl(connectHandlers({ addForward }));
    const bad = await RawClient.open(server.path);
    const other = await RawClient.open(server.path);
    bad.send('not json\n');
    expect(await bad.next()).toMatchObject({ id: null, ok: false, error: { code: 'ERR_MUXTUN_CONTROL_BAD_REQUEST' } });
    bad.send(Buffer.from([0xff, 0xfe, 0x00, 0x0a]));
    expect(await bad.next()).toMatchObject({ id: null, ok: false, error: { code: 'ERR_MUXTUN_CONTROL_BAD_REQUEST' } });
    bad.send('{"id":9,"method":"shutdown"}\n');
    expect(await bad.next()).toMatchObject({ id: 9, ok: false, error: { code: 'ERR_MUXTUN_CONTROL_UNKNOWN_METHOD' } });
    bad.send('{"id":10,"method":"forward.add","params":{"kind":"L","spec":8080}}\n');
    expect(await bad.next()).toMatchObject({ id: 10, ok: false, error: { code: 'ERR_MUXTUN_CONTROL_BAD_REQUEST' } });
    expect(addForward).not.toHaveBeenCalled();

    bad.send('\n   \n{"id":11,"method":"status"}\r\n'); // Blank lines are skipped, CRLF is fine.
    expect(await bad.next()).toEqual({ id: 11, ok: true, result: connectStatus });
    other.send('{"id":1,"method":"status"}\n');
    expect(await other.next()).toMatchObject({ id: 1, ok: true });
  });

  it('answers a line longer than the limit, then closes that connection only', async () => {
    const server = await startFakeControl(connectHandlers(), { limits: { maxLineBytes: 1024 } });
    const flooder = await RawClient.open(server.path);
    const other = await RawClient.open(server.path);
    flooder.send(`{"id":1,"method":"status","padding":"${'x'.repeat(4000)}`);
    expect(await flooder.next()).toMatchObject({ id: null, ok: false, error: { code: 'ERR_MUXTUN_CONTROL_BAD_REQUEST', message: expect.stringMatching(/longer than 1024 bytes/) } });
    await within(flooder.closed, 5_000, 'the flooding connection to close');
    other.send('{"id":2,"method":"status"}\n');
    expect(await other.next()).toMatchObject({ id: 2, ok: true });
  });

  it('answers a last request sent without a newline before the client ends, then closes', async () => {
    const server = await startFakeControl(connectHandlers());
    const client = await RawClient.open(server.path);
    client.socket.end('{"id":1,"method":"status"}');
    expect(await client.next()).toMatchObject({ id: 1, ok: true });
    await within(client.closed, 5_000, 'the server to close after the last answer');
  });

  it('says which methods this muxtun does not do', async () => {
    const connect = await startFakeControl(connectHandlers(), { kind: 'connect' });
    const serve = await startFakeControl({ status: () => connectStatus }, { kind: 'serve' });
    const onConnect = await rejection(requestControl(connect.path, 'session.close', { session: 'x' }));
    expect(onConnect).toBeInstanceOf(ControlRequestError);
    expect(onConnect.code).toBe('ERR_MUXTUN_CONTROL_UNSUPPORTED');
    expect(onConnect.message).toMatch(/session\.close is not supported by this muxtun \(connect\)/);
    const onServe = await rejection(requestControl(serve.path, 'forward.add', { kind: 'L', spec: '1:a:2' }));
    expect(onServe.message).toMatch(/forward\.add is not supported by this muxtun \(serve\)/);
  });

  it('passes on a handler error with a code; any other becomes an internal error without its stack', async () => {
    const internal: unknown[] = [];
    const server = await startFakeControl(
      connectHandlers({
        addForward: () => Promise.reject(new TunnelError('ERR_MUXTUN_POLICY', '-R 0.0.0.0:80: port 80 is outside --allow-remote')),
        removeForward: () => {
          throw new ControlNotFoundError('no forward "9"');
        },
        listForwards: () => {
          throw new TypeError('secret internals at /home/x/src/thing.ts:12');
        },
        status: () => ({ ...connectStatus, pid: 10n as unknown as number }),
      }),
      { onInternalError: (error) => internal.push(error) },
    );
    const refused = await rejection(requestControl(server.path, 'forward.add', { kind: 'R', spec: '80:localhost:80' }));
    expect(refused).toMatchObject({ code: 'ERR_MUXTUN_POLICY', message: '-R 0.0.0.0:80: port 80 is outside --allow-remote' });
    expect(await rejection(requestControl(server.path, 'forward.remove', { forward: '9' }))).toMatchObject({ code: 'ERR_MUXTUN_CONTROL_NOT_FOUND', message: 'no forward "9"' });

    const client = await RawClient.open(server.path);
    client.send('{"id":1,"method":"forward.list"}\n{"id":2,"method":"status"}\n');
    const responses = await client.take(2);
    for (const response of responses) {
      expect(response.error?.code).toBe('ERR_MUXTUN_CONTROL_INTERNAL');
      expect(JSON.stringify(response)).not.toMatch(/secret|thing\.ts|at /);
    }
    expect(internal).toHaveLength(2);
  });
});

describe('limits', () => {
  it('answers a connection beyond the limit with BUSY and closes it; the others keep working', async () => {
    const server = await startFakeControl(connectHandlers(), { limits: { maxConnections: 2 } });
    const first = await RawClient.open(server.path);
    const second = await RawClient.open(server.path);
    first.send('{"id":1,"method":"status"}\n');
    await first.next(); // Both are accepted by now.
    const third = await RawClient.open(server.path);
    expect(await third.next()).toMatchObject({ id: null, ok: false, error: { code: 'ERR_MUXTUN_CONTROL_BUSY' } });
    await within(third.closed, 5_000, 'the busy connection to close');
    second.send('{"id":2,"method":"status"}\n');
    expect(await second.next()).toMatchObject({ id: 2, ok: true });
  });

  it('handles at most maxInFlight requests of a connection at once; the rest wait, none is lost', async () => {
    const gate = deferred<void>();
    let running = 0;
    let most = 0;
    const server = await startFakeControl(
      connectHandlers({
        status: async () => {
          running++;
          most = Math.max(most, running);
          await gate.promise;
          running--;
          return connectStatus;
        },
      }),
      { limits: { maxInFlight: 2 } },
    );
    const client = await RawClient.open(server.path);
    client.send(Array.from({ length: 20 }, (_, i) => `{"id":${i},"method":"status"}\n`).join(''));
    await within(
      (async () => {
        while (running < 2) await new Promise((resolve) => setImmediate(resolve));
      })(),
      5_000,
      'two requests running',
    );
    gate.resolve();
    const ids = (await client.take(20)).map((response) => response.id);
    expect(new Set(ids).size).toBe(20);
    expect(most).toBe(2);
  });

  it('stops reading requests of a client that does not read its responses, and catches up when it does', async () => {
    let calls = 0;
    const big = { ...connectStatus, server: 'x'.repeat(64 * 1024) };
    const server = await startFakeControl(
      connectHandlers({
        status: () => {
          calls++;
          return big;
        },
      }),
    );
    const client = await RawClient.open(server.path);
    client.socket.pause();
    client.send(Array.from({ length: 100 }, (_, i) => `{"id":${i},"method":"status"}\n`).join(''));
    await new Promise((resolve) => setTimeout(resolve, 500)); // What the server does meanwhile is the point: not everything.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(100); // 6 MiB of answers were not produced into a client that reads nothing.
    client.socket.resume();
    expect((await client.take(100)).every((response) => response.ok)).toBe(true);
    expect(calls).toBe(100);
  });

  it('closes an idle connection, but not one waiting for a slow handler', async () => {
    const slow = deferred<void>();
    const server = await startFakeControl(
      connectHandlers({
        listForwards: async () => {
          await slow.promise;
          return { forwards: [] };
        },
      }),
      { limits: { idleTimeoutMs: 100 } },
    );
    const idle = await RawClient.open(server.path);
    await within(idle.closed, 5_000, 'the idle connection to close');

    const waiting = await RawClient.open(server.path);
    waiting.send('{"id":1,"method":"forward.list"}\n');
    await new Promise((resolve) => setTimeout(resolve, 400)); // Several idle periods with the handler pending.
    expect(waiting.socket.destroyed).toBe(false);
    slow.resolve();
    expect(await waiting.next()).toEqual({ id: 1, ok: true, result: { forwards: [] } });
  });
});

describe('requestControl', () => {
  it('fails with ERR_MUXTUN_CONTROL when nothing is at the path, or nothing listens', async () => {
    const dir = await tempDir();
    const missing = await rejection(requestControl(join(dir, 'none.sock'), 'status', undefined));
    expect(missing).toMatchObject({ code: 'ERR_MUXTUN_CONTROL', message: expect.stringMatching(/no muxtun control socket at .*none\.sock/) });

    await mkdir(join(dir, 'sub'));
    const old = net.createServer();
    await new Promise<void>((resolve) => old.listen(join(dir, 'sub', 'x'), resolve));
    await link(join(dir, 'sub', 'x'), join(dir, 'dead.sock'));
    await new Promise<void>((resolve) => old.close(() => resolve()));
    expect(await rejection(requestControl(join(dir, 'dead.sock'), 'status', undefined))).toMatchObject({ code: 'ERR_MUXTUN_CONTROL', message: expect.stringMatching(/has ended/) });
  });

  it('gives up after its timeout', async () => {
    const never = deferred<never>();
    const server = await startFakeControl(connectHandlers({ status: () => never.promise }));
    const error = await rejection(requestControl(server.path, 'status', undefined, { timeoutMs: 200 }));
    expect(error).toMatchObject({ code: 'ERR_MUXTUN_CONTROL', message: expect.stringMatching(/did not answer status within 0\.2 s/) });
    expect((await stat(server.path)).isSocket()).toBe(true);
  });
});
