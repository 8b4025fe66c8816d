// Process plumbing for the benchmarks (`npm run bench`, `npm run bench:engine`):
// where the repository is, children with a raised open-files limit that print
// a ready line or a JSON result, the Go builds (interop peer, go-muxado tunnel), readiness by
// round trip, and resident memory and CPU time read from /proc. (Free ports
// come from test/support/ports.js, shared with the tests; the machine's
// description and the Markdown table are in report.js.)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const goPeerBinary = path.join(root, 'test/interop/bin/muxado-peer');
/** The bench's Go reference tunnel (kind go-muxado), built from scripts/bench/go-tunnel into .tmp/ (git-ignored). */
export const goTunnelBinary = path.join(root, '.tmp/bench/go-tunnel');

const goBin = process.env.MUXTUN_GO || 'go';
const goPath = process.env.MUXTUN_MUXADO_GOPATH || '/usr/share/gocode';

/**
 * Whether Go and Debian's muxado sources are here (the interop suite's
 * test/interop/go-peer.ts looks the same way), or why not.
 */
export function goAvailable() {
  try {
    execFileSync(goBin, ['version'], { stdio: 'ignore', timeout: 15_000 });
  } catch {
    return { ok: false, reason: `go not found (ran "${goBin} version"); install golang-go or set MUXTUN_GO` };
  }
  const muxado = path.join(goPath, 'src/github.com/inconshreveable/muxado');
  if (!existsSync(path.join(muxado, 'client.go'))) {
    return { ok: false, reason: `go found, but not the muxado package in ${muxado}; install golang-github-inconshreveable-muxado-dev or set MUXTUN_MUXADO_GOPATH` };
  }
  return { ok: true };
}

/**
 * Builds the Go program in `sourceDir` into `binary`: GOPATH mode against
 * Debian's muxado, nothing downloaded (GOPROXY=off), a user's GOFLAGS
 * ignored; the compile cache is the interop suite's. Returns why it failed.
 */
export function buildGo(sourceDir, binary) {
  try {
    mkdirSync(path.dirname(binary), { recursive: true });
    execFileSync(goBin, ['build', '-o', binary, '.'], {
      cwd: sourceDir,
      env: { ...process.env, GOPATH: goPath, GO111MODULE: 'off', GOFLAGS: '', GOPROXY: 'off', GOCACHE: process.env.GOCACHE || path.join(os.tmpdir(), 'muxtun-interop-gocache') },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
    });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `go build in ${path.relative(root, sourceDir)} failed: ${String(error.stderr || error.message).trim().split('\n')[0]}` };
  }
}

/** Builds the Go reference peer (GOPATH mode against Debian's muxado), or returns why it cannot. */
export function buildGoPeer() {
  const built = buildGo(path.join(root, 'test/interop/peer'), goPeerBinary);
  if (built.ok) return built;
  return { ok: false, reason: `Go reference unavailable (${built.reason}); install golang-go and golang-github-inconshreveable-muxado-dev` };
}

// 5,000 idle forwarded connections need 5,000+ descriptors in every process
// on the path, and CI machines often start with a soft limit of 1,024. Raise
// it in the child's shell, then exec, so the pid we hold is the real process.
const RAISE_NOFILE = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"';

/**
 * Spawns `command` with a raised open-files limit. Keeps the last 4 KB of
 * stderr (`child.stderrTail()`) for error messages; stdout is collected
 * only when `collectStdout` is set (load generators print one JSON line).
 */
export function spawnChild(command, args, { env, collectStdout = false, stdin = 'pipe' } = {}) {
  const child = spawn('sh', ['-c', RAISE_NOFILE, command, ...args], { stdio: [stdin, 'pipe', 'pipe'], env: env ?? process.env });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  child.stdout.on('data', (d) => {
    if (collectStdout) stdout += d;
  });
  child.stderrTail = () => stderr;
  child.stdoutText = () => stdout;
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

/** Resolves with the first match of `pattern` in the child's stdout; rejects if it exits first or after `timeoutMs`. */
export function waitForOutput(child, pattern, what, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (data) => {
      seen += data;
      const match = seen.match(pattern);
      if (match) finish(() => resolve(match));
    };
    const onExit = (code, signal) => finish(() => reject(new Error(`${what} exited (${signal ?? code}) before it was ready\n${child.stderrTail()}`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`${what} was not ready within ${timeoutMs / 1000} s\n${child.stderrTail()}`))), timeoutMs);
    const finish = (settle) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      settle();
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Runs a child to completion and parses the last line of its stdout as JSON. */
export async function runJsonChild(command, args, what, { timeoutMs = 600_000 } = {}) {
  const child = spawnChild(command, args, { collectStdout: true });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${what} failed (${signal ?? `exit ${code}`})\n${child.stderrTail()}`);
  const lines = child.stdoutText().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** Stops a child with SIGTERM (SIGKILL after `graceMs`) and waits for it. */
export async function stopChild(child, graceMs = 3_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

// freePort and onPath: test/support/ports.js, shared with the tests.

/**
 * Resolves once a 4-byte round trip through `port` comes back: the listener is
 * up and, for a tunnel, the whole path to the echo target works.
 */
export async function waitForEcho(port, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      await echoOnce(port, Math.max(1, deadline - Date.now()));
      return;
    } catch (error) {
      last = error.message;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what}: no echo through 127.0.0.1:${port} within ${timeoutMs / 1000} s (last: ${last})`);
}

function echoOnce(port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => fail(new Error('timed out')), timeoutMs);
    let got = 0;
    const fail = (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('closed before the echo')));
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (d) => {
      got += d.length;
      if (got < 4) return;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.destroy();
      resolve();
    });
  });
}

/** VmRSS of one process in bytes (0 if it is gone). */
export function rssBytes(pid) {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** `pid` and all its descendants (sshd forks a child per connection, and that one another). */
export function processTree(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may hold spaces: ppid follows the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  const tree = [];
  const pending = [pid];
  while (pending.length > 0) {
    const next = pending.pop();
    tree.push(next);
    pending.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** Summed VmRSS of a process and its descendants. */
export function treeRssBytes(pid) {
  return processTree(pid).reduce((sum, p) => sum + rssBytes(p), 0);
}

/** CPU time (user + system) of a process so far, in seconds. */
export function cpuSeconds(pid) {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

/** CPU seconds of `pid` in user space and in the kernel (0 and 0 once it is gone). */
export function cpuSplit(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat; fields[0] is field 3 (state).
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
