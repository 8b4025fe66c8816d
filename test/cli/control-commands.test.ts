/**
 * `muxtun status`, `forward …` and `session …` run in-process through
 * `main`, against a real control socket whose handlers are fakes: the
 * output, exit codes and requests a user and a running muxtun would see.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { ControlHandlers } from '../../src/control/control-server.js';
import { ControlNotFoundError } from '../../src/control/errors.js';
import { TunnelError } from '../../src/tunnel/errors.js';
import { aliceSession, connectStatus, forwardL, serveStatus, startFakeControl } from '../support/control.js';
import { tempDir } from '../support/fs.js';

class Collector extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += String(chunk);
    callback();
  }
}

/** Runs muxtun with a runtime dir of its own (so discovery never sees a real muxtun of this machine). */
async function run(argv: string[], runtimeDir?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Collector();
  const stderr = new Collector();
  const env = { HOME: '/nonexistent-muxtun-unit', XDG_STATE_HOME: '', XDG_RUNTIME_DIR: runtimeDir ?? (await tempDir()), PATH: process.env.PATH ?? '' };
  const code = await main(argv, { env, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const connectHandlers = (overrides: Partial<ControlHandlers> = {}): ControlHandlers => ({
  status: () => connectStatus,
  listForwards: () => ({ forwards: connectStatus.forwards }),
  ...overrides,
});

const serveHandlers = (overrides: Partial<ControlHandlers> = {}): ControlHandlers => ({
  status: () => serveStatus,
  listSessions: () => ({ sessions: serveStatus.sessions }),
  ...overrides,
});

describe('muxtun status', () => {
  it('--json prints the status object', async () => {
    const control = await startFakeControl(connectHandlers());
    const { code, stdout, stderr } = await run(['status', '--control', control.path, '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(connectStatus);
  });

  it('of a connect: the server, the session and a table of forwards', async () => {
    const control = await startFakeControl(connectHandlers());
    const { code, stdout } = await run(['status', '--control', control.path]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('connect pid 4242 (muxtun 0.1.0) to tunnel.example.com:4443');
    // The last heartbeat's round trip, and the smallest (the path's) beside it.
    expect(lines[1]).toBe('session: up 3m12s, rtt 12.5 ms (min 2.1), resumed 1 time');
    expect(lines[2]).toMatch(/^ID\s+FORWARD\s+LISTENING\s+OPEN\s+TOTAL\s+IN\s+OUT$/);
    expect(lines[3]).toMatch(/^1\s+-L 8080:localhost:80\s+127\.0\.0\.1:8080\s+2\s+17\s+3\.0 MiB\s+2\.0 KiB$/);
    expect(lines[4]).toMatch(/^2\s+-R 0:localhost:3000\s+0\.0\.0\.0:41234\s+0\s+1\s+10 B\s+20 B$/);
    // Aligned: every column starts at the same place on each line.
    expect(lines[3]!.indexOf('-L')).toBe(lines[2]!.indexOf('FORWARD'));
    expect(lines[4]!.indexOf('0.0.0.0')).toBe(lines[2]!.indexOf('LISTENING'));
  });

  it('of a serve: the sessions by user with their forwards', async () => {
    const control = await startFakeControl(serveHandlers(), { kind: 'serve' });
    const { code, stdout } = await run(['status', '--control', control.path]);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('serve pid 777 (muxtun 0.1.0) listening on 0.0.0.0:4443');
    expect(lines[1]).toBe('2 sessions');
    expect(lines[2]).toMatch(/^USER\s+SESSION\s+FROM\s+UP\s+RTT\s+STATE\s+FORWARDS$/);
    expect(lines[3]).toMatch(/^alice\s+s-7f3a\s+192\.0\.2\.10:50123\s+1h00m\s+30 ms \(min 0\.4\)\s+active\s+-R 9000:localhost:3000 \(0\.0\.0\.0:9000\)$/);
    expect(lines[4]).toMatch(/^bob\s+s-0b0b\s+\[2001:db8::1\]:40000\s+1m00s\s+-\s+detached\s+-$/);
  });

  it('finds the one running muxtun without --control, and says so when there is none', async () => {
    const runtime = await tempDir();
    const none = await run(['status'], runtime);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`muxtun: no running muxtun found in ${join(runtime, 'muxtun')} (use --control PATH) [ERR_MUXTUN_CONTROL_DISCOVERY]\n`);

    await startFakeControl(connectHandlers(), { path: join(runtime, 'muxtun', 'connect-4242.sock') });
    const one = await run(['status', '--json'], runtime);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ kind: 'connect', pid: 4242 });
  });

  it('names the socket when it cannot reach it', async () => {
    const path = join(await tempDir(), 'gone.sock');
    const { code, stderr } = await run(['status', '--control', path]);
    expect(code).toBe(1);
    expect(stderr).toBe(`muxtun: no muxtun control socket at ${path} (ENOENT) [ERR_MUXTUN_CONTROL]\n`);
  });
});

describe('muxtun forward', () => {
  it('add -L: sends the spec as given and prints the new forward', async () => {
    const addForward = vi.fn(() => ({ forward: { ...forwardL, id: '3', spec: '9090:localhost:90', listening: '127.0.0.1:9090' } }));
    const control = await startFakeControl(connectHandlers({ addForward }));
    const { code, stdout } = await run(['forward', 'add', '-L', '9090:localhost:90', '--control', control.path]);
    expect(code).toBe(0);
    expect(addForward).toHaveBeenCalledWith({ kind: 'L', spec: '9090:localhost:90' });
    expect(stdout).toBe('added forward 3: -L 9090:localhost:90, listening on 127.0.0.1:9090\n');
  });

  it('add -R refused by the connect: exit 1 with its message and code', async () => {
    const control = await startFakeControl(
      connectHandlers({ addForward: () => Promise.reject(new TunnelError('ERR_MUXTUN_POLICY', '-R 0.0.0.0:80 -> localhost:80: refused by the server: port 80 is outside --allow-remote')) }),
    );
    const { code, stdout, stderr } = await run(['forward', 'add', '-R', '80:localhost:80', '--control', control.path]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe('muxtun: -R 0.0.0.0:80 -> localhost:80: refused by the server: port 80 is outside --allow-remote [ERR_MUXTUN_POLICY]\n');
  });

  it('add with a bad spec, or with none or two of -L/-R/-D: usage error (exit 2), nothing sent', async () => {
    const addForward = vi.fn(() => ({ forward: forwardL }));
    const control = await startFakeControl(connectHandlers({ addForward }));
    const bad = await run(['forward', 'add', '-L', '80', '--control', control.path]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/-L 80: expected \[bind:\]port:host:hostport/);
    const two = await run(['forward', 'add', '-L', '1:a:2', '-D', '1080', '--control', control.path]);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/exactly one of -L, -R or -D/);
    expect((await run(['forward', 'add', '--control', control.path])).code).toBe(2);
    expect(addForward).not.toHaveBeenCalled();
  });

  it('remove by id, by spec, or by -L spec', async () => {
    const removeForward = vi.fn(() => ({ forward: forwardL }));
    const control = await startFakeControl(connectHandlers({ removeForward }));
    const byId = await run(['forward', 'remove', '1', '--control', control.path]);
    expect(byId).toMatchObject({ code: 0, stdout: 'removed forward 1: -L 8080:localhost:80\n' });
    expect((await run(['forward', 'remove', '-L', '8080:localhost:80', '--control', control.path])).code).toBe(0);
    expect(removeForward.mock.calls).toEqual([[{ forward: '1' }], [{ forward: '-L 8080:localhost:80' }]]);
    expect((await run(['forward', 'remove', '--control', control.path])).code).toBe(2);
  });

  it('list: a table, or --json', async () => {
    const control = await startFakeControl(connectHandlers());
    const table = await run(['forward', 'list', '--control', control.path]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[1]).toMatch(/^1\s+-L 8080:localhost:80\s+127\.0\.0\.1:8080/);
    const json = await run(['forward', 'list', '--json', '--control', control.path]);
    expect(JSON.parse(json.stdout)).toEqual({ forwards: connectStatus.forwards });
  });

  it('on a serve: exit 1, saying serve does not do it', async () => {
    const control = await startFakeControl(serveHandlers(), { kind: 'serve' });
    const { code, stderr } = await run(['forward', 'list', '--control', control.path]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/forward\.list is not supported by this muxtun \(serve\).*\[ERR_MUXTUN_CONTROL_UNSUPPORTED\]/);
  });

  it('without a subcommand: usage (exit 2)', async () => {
    const { code, stderr } = await run(['forward']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/add/);
  });
});

describe('muxtun session', () => {
  it('list: sessions by user with their ids, or --json', async () => {
    const control = await startFakeControl(serveHandlers(), { kind: 'serve' });
    const table = await run(['session', 'list', '--control', control.path]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^USER\s+SESSION/);
    expect(table.stdout).toMatch(/\nalice\s+s-7f3a\s.*\nbob\s+s-0b0b\s/);
    const json = await run(['session', 'list', '--json', '--control', control.path]);
    expect(JSON.parse(json.stdout)).toEqual({ sessions: serveStatus.sessions });
  });

  it('close ID --reason: sends both, prints the session closed', async () => {
    const closeSession = vi.fn(() => ({ session: aliceSession }));
    const control = await startFakeControl(serveHandlers({ closeSession }), { kind: 'serve' });
    const { code, stdout } = await run(['session', 'close', 's-7f3a', '--reason', 'maintenance at 10:00', '--control', control.path]);
    expect(code).toBe(0);
    expect(closeSession).toHaveBeenCalledWith({ session: 's-7f3a', reason: 'maintenance at 10:00' });
    expect(stdout).toBe('closed session s-7f3a (alice, from 192.0.2.10:50123)\n');
  });

  it('close of an unknown session: exit 1 with the message', async () => {
    const control = await startFakeControl(
      serveHandlers({
        closeSession: ({ session }) => {
          throw new ControlNotFoundError(`no session "${session}" (see muxtun session list)`);
        },
      }),
      { kind: 'serve' },
    );
    const { code, stderr } = await run(['session', 'close', 'nope', '--control', control.path]);
    expect(code).toBe(1);
    expect(stderr).toBe('muxtun: no session "nope" (see muxtun session list) [ERR_MUXTUN_CONTROL_NOT_FOUND]\n');
  });

  it('finds a running serve beside a running connect without --control', async () => {
    const runtime = await tempDir();
    await startFakeControl(connectHandlers(), { path: join(runtime, 'muxtun', 'connect-1.sock') });
    await startFakeControl(serveHandlers(), { path: join(runtime, 'muxtun', 'serve-2.sock'), kind: 'serve' });
    expect((await run(['session', 'list'], runtime)).code).toBe(0);
    const status = await run(['status'], runtime);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/2 running muxtuns found .*choose one with --control PATH/s);
  });
});
