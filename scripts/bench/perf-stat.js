// BENCH_PERF=1: `perf stat` on a kind's tunnel processes while its bulk
// workload runs, so muxtun's cost per GB can be set beside ssh's in counts
// the kernel keeps (issue 16 asks for page faults and context switches per
// GB): CPU time, context switches, page faults, system calls.
import { spawn, spawnSync } from 'node:child_process';

const EVENTS = ['task-clock', 'context-switches', 'page-faults', 'raw_syscalls:sys_enter'];

/** Whether `perf stat` can count these events here, or why not. */
export function perfAvailable() {
  const probe = spawnSync('perf', ['stat', '-x,', '-e', EVENTS.join(','), '--', 'true'], { encoding: 'utf8' });
  if (probe.error) return { ok: false, reason: 'perf not found (install linux-perf)' };
  if (probe.status !== 0) return { ok: false, reason: `perf stat failed: ${probe.stderr.trim().split('\n').pop()}` };
  return { ok: true };
}

/**
 * Starts counting for `pids` (all their threads); `stop()` resolves to the
 * counts: { 'task-clock': ms, 'context-switches': n, 'page-faults': n, 'raw_syscalls:sys_enter': n }.
 */
export function startPerfStat(pids) {
  const child = spawn('perf', ['stat', '-x,', '-e', EVENTS.join(','), '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr.on('data', (d) => (text += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  return {
    /** Stops perf (again: a no-op) and parses what it printed. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      const counts = {};
      for (const line of text.split('\n')) {
        const [value, , event] = line.split(',');
        if (EVENTS.includes(event)) counts[event] = Number(value);
      }
      return counts;
    },
  };
}
