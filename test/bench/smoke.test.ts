// `npm run bench -- --smoke` end to end, so the tunnel benchmark cannot rot:
// real serve/connect processes, sshd and the Go tunnel when they can run, every workload
// with tiny sizes. It checks the bench finishes and prints its table; it
// asserts nothing about speed (CI machines are shared and noisy).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, TestProcess } from '../support/process.js';

async function runSmokeBench(extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // BENCH_WRITE from the caller's shell must not turn a test into a docs edit.
  const env = { ...process.env, BENCH_WRITE: '', BENCH_PROFILE: '', BENCH_KINDS: '', BENCH_WORKLOADS: '', BENCH_PERF: '', ...extra };
  const bench = new TestProcess({ command: process.execPath, args: [join(repoRoot, 'scripts/bench/run.js'), '--smoke'], cwd: repoRoot, env, name: 'bench --smoke' });
  const { code } = await bench.waitForExit(170_000);
  return { code, stdout: bench.stdout.join('\n'), stderr: bench.stderr.join('\n') };
}

describe('npm run bench -- --smoke', () => {
  it('measures every kind on every workload and prints the table', async () => {
    expect(existsSync(join(repoRoot, 'dist/cli/main.js')), 'dist/ is built (npm test builds it first)').toBe(true);
    const { code, stdout, stderr } = await runSmokeBench();
    expect(code, `exit code; stderr:\n${stderr}`).toBe(0);

    const lines = stdout.split('\n');
    const header = lines.find((line) => line.startsWith('| workload |'));
    expect(header, stdout).toBeDefined();
    for (const kind of ['direct', 'muxtun', 'ssh -L']) expect(header).toContain(`| ${kind} |`);
    for (const workload of ['bulk, 1 connection', 'bulk, 8 connections', 'new connection per request', 'ping-pong on one connection, idle', 'core-µs per round trip', 'while bulk (a) runs', 'RSS per idle connection']) {
      const row = lines.find((line) => line.startsWith('|') && line.includes(workload));
      expect(row, `a row for "${workload}" in\n${stdout}`).toBeDefined();
      // direct and muxtun always run; their cells hold a measurement, not "skipped".
      const cells = row!.split('|').map((cell) => cell.trim());
      expect(cells[3], `muxtun's cell in "${row}"`).not.toBe('skipped');
    }
    expect(stdout).toContain('Targets:');
    // ssh -L and go-muxado (no sshd, no Go) are each either measured or skipped with the reason printed.
    const columns = header!.split('|').map((cell) => cell.trim());
    const bulkCells = lines.find((line) => line.includes('bulk, 1 connection'))!.split('|').map((cell) => cell.trim());
    for (const kind of ['ssh -L', 'go-muxado']) {
      expect(columns, `a column for ${kind}`).toContain(kind);
      if (bulkCells[columns.indexOf(kind)] === 'skipped') expect(stdout).toMatch(new RegExp(`Note: ${kind} was skipped: .+`));
    }
  }, 180_000);

  it('measures the Node floors (node-tls-pipe, node-tcp-relay) and, with BENCH_PERF=1, counts per GB or says why not', async () => {
    const { code, stdout, stderr } = await runSmokeBench({ BENCH_KINDS: 'muxtun,node-tls-pipe,node-tcp-relay', BENCH_WORKLOADS: 'bulk,memory', BENCH_PERF: '1' });
    expect(code, `exit code; stderr:\n${stderr}`).toBe(0);
    const lines = stdout.split('\n');
    const columns = lines.find((line) => line.startsWith('| workload |'))!.split('|').map((cell) => cell.trim());
    const bulkCells = lines.find((line) => line.includes('bulk, 1 connection'))!.split('|').map((cell) => cell.trim());
    for (const kind of ['node-tls-pipe', 'node-tcp-relay']) {
      expect(columns, `a column for ${kind}`).toContain(kind);
      expect(bulkCells[columns.indexOf(kind)], `${kind}'s bulk cell`).toMatch(/^[\d,]+$/);
      expect(columns).toContain(`muxtun ÷ ${kind}`);
    }
    // The relay is one process: its memory counts on the server side, and it has no client side.
    expect(stderr).toMatch(/memory +node-tcp-relay +server -?\d+ B\/conn, client none/);
    const counted = lines.find((line) => line.startsWith('| muxtun |') && line.split('|').length === 9);
    if (counted === undefined) expect(stdout + stderr).toMatch(/BENCH_PERF: not counting: .+/);
    else expect(stdout).toContain('per GB each way (perf stat');
  }, 120_000);
});
