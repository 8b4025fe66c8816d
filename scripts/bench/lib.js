// Small helpers shared by the benchmark scripts: child processes that print
// a ready line, the Go reference peer build, the machine's description.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const goPeerBinary = path.join(root, 'test/interop/bin/muxado-peer');

/** Builds the Go reference peer (GOPATH mode against Debian's muxado), or returns why it cannot. */
export function buildGoPeer() {
  try {
    mkdirSync(path.dirname(goPeerBinary), { recursive: true });
    execFileSync('go', ['build', '-o', goPeerBinary, '.'], {
      cwd: path.join(root, 'test/interop/peer'),
      env: { ...process.env, GOPATH: process.env.MUXTUN_MUXADO_GOPATH || '/usr/share/gocode', GO111MODULE: 'off', GOFLAGS: '', GOCACHE: process.env.GOCACHE || path.join(os.tmpdir(), 'muxtun-interop-gocache') },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
    });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `Go reference unavailable (${String(error.message).split('\n')[0]}); install golang-go and golang-github-inconshreveable-muxado-dev` };
  }
}

/** Spawns a process and resolves once a stdout line matches `ready` (with the match). */
export function startProcess(command, args, ready, options = {}) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`${command} ${args.join(' ')}: not ready in 60 s\n${stderr}`)), 60_000);
    child.stdout.on('data', (data) => {
      buffered += data;
      const match = buffered.match(ready);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, stderr: () => stderr });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')} exited with ${code} before it was ready\n${stderr}`));
    });
  });
}

/**
 * Runs a command to completion and parses the last stdout line as JSON.
 * Stdin stays open while it runs: the Go peer exits when its stdin closes.
 */
export function runJson(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      child.stdin.end();
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited with ${code}\n${err}`));
      const lines = out.trim().split('\n');
      resolve(JSON.parse(lines[lines.length - 1]));
    });
  });
}

export function machine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

export function stop(proc) {
  proc.child.stdin.end();
  proc.child.kill('SIGTERM');
}

/** Renders rows as a Markdown table. */
export function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}
