/**
 * State paths the file system will not create (here: under /proc) must make
 * muxtun fail at once with one clear line, never hang. Before the fix,
 * fs.mkdir({ recursive: true }) looped for ever on /proc and `serve` or
 * `connect` sat there spinning a core, ignoring the first SIGTERM.
 *
 * Self-contained on purpose: it spawns bin/muxtun.js with node:child_process
 * directly because the shared e2e helpers (test/e2e/helpers, setup.ts) are
 * being reorganised in parallel.
 * TODO: move onto the shared helpers (startServe/runMuxtun/Scope) once they settle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'muxtun.js');
/** How long a refused state path may take to fail, node start-up on a busy machine included. */
const FAIL_WITHIN_MS = 8_000;
/** A fresh server generates its key first. */
const START_WITHIN_MS = 20_000;

interface Child {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: Child[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  await Promise.all(
    children.splice(0).map(async ({ child, exited }) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }),
  );
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** The runner's environment with nothing that could point muxtun at real state. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('MUXTUN_')) continue;
    env[key] = key.startsWith('XDG_') ? '' : value;
  }
  return { ...env, HOME: '/nonexistent-muxtun-test', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', ...extra };
}

function muxtun(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(process.execPath, [bin, ...args], { env: childEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  const entry: Child = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (entry.stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (entry.stderr += text));
  children.push(entry);
  return entry;
}

/** Resolves with `what()` once it is defined; rejects after `ms` (afterEach then kills the child). */
async function waitFor<T>(ms: number, description: string, what: () => T | undefined, proc: Child): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = what();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`${description}: not within ${ms} ms\nstdout:\n${proc.stdout}\nstderr:\n${proc.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function exitOf(proc: Child, ms: number) {
  let done: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void proc.exited.then((exit) => (done = exit));
  return waitFor(ms, 'exit', () => done, proc);
}

/** The CLI's own failure lines (`muxtun: …`); log lines are JSON. */
const failureLines = (stderr: string) => stderr.split('\n').filter((line) => line.startsWith('muxtun:'));

describe.runIf(process.platform === 'linux' && existsSync('/proc/self'))('state paths under /proc', () => {
  beforeAll(() => {
    if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  });

  it('serve --state-dir /proc/…: exit 1 at once, one line naming the path and the reason', async () => {
    const stateDir = `/proc/muxtun-e2e-${process.pid}/state`;
    const serve = muxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', stateDir]);

    const exit = await exitOf(serve, FAIL_WITHIN_MS);
    expect(exit, serve.stderr).toEqual({ code: 1, signal: null });
    expect(failureLines(serve.stderr)).toEqual([
      `muxtun: Cannot create state directory ${stateDir}: /proc does not allow creating directories ` +
        `(mkdir /proc/muxtun-e2e-${process.pid}: ENOENT) [ERR_MUXTUN_STATE_DIR]`,
    ]);
    expect(serve.stdout).not.toContain('listening');
  });

  it('connect --known-hosts /proc/…/known_hosts, trust on first use: exit 1 at once, one clear line', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'muxtun-e2e-state-'));
    tempDirs.push(stateDir);
    const serve = muxtun(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', join(stateDir, 'state')]);
    const started = await waitFor(
      START_WITHIN_MS,
      'serve printing its address, fingerprint and token',
      () => {
        const port = /^muxtun server listening on 127\.0\.0\.1:(\d+)$/m.exec(serve.stdout)?.[1];
        const fingerprint = /^fingerprint: (sha256:[0-9a-f]{64})/m.exec(serve.stdout)?.[1];
        const token = /^token:\s+(\S+)$/m.exec(serve.stdout)?.[1];
        return port && fingerprint && token ? { port, fingerprint, token } : undefined;
      },
      serve,
    );

    const knownHosts = `/proc/muxtun-e2e-${process.pid}/known_hosts`;
    // No --fingerprint: the client trusts on first use and must record the server in knownHosts.
    const connect = muxtun(['connect', `127.0.0.1:${started.port}`, '--known-hosts', knownHosts, '-L', '0:localhost:80'], {
      MUXTUN_TOKEN: started.token,
    });

    const exit = await exitOf(connect, FAIL_WITHIN_MS);
    expect(exit, connect.stderr).toEqual({ code: 1, signal: null });
    expect(failureLines(connect.stderr)).toEqual([
      `muxtun: Cannot record 127.0.0.1:${started.port} in known hosts file ${knownHosts}: ` +
        `/proc does not allow creating directories (mkdir /proc/muxtun-e2e-${process.pid}: ENOENT) ` +
        '[ERR_MUXTUN_KNOWN_HOSTS_WRITE]',
    ]);
    expect(connect.stderr).not.toContain(started.token);
    // The server is unaffected by a client that could not keep its known_hosts.
    expect(serve.child.exitCode).toBeNull();
  });
});
