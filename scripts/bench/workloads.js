// The workloads of `npm run bench`, each run against one started kind (a
// local port that leads to the echo target). Every measurement happens in a
// load-generator child process (load.js); this file starts them, reads the
// tunnel processes' CPU time and memory around them, and returns numbers.
import path from 'node:path';
import { startPerfStat } from './perf-stat.js';
import { cpuSeconds, cpuSplit, root, rssBytes, runJsonChild, sleep, spawnChild, stopChild, waitForOutput } from './procs.js';

const loadScript = path.join(root, 'scripts/bench/load.js');

function load(spec, what) {
  return runJsonChild(process.execPath, [loadScript, JSON.stringify(spec)], what);
}

/** Summed CPU seconds of the kind's tunnel processes (0 for direct). */
function tunnelCpu(tunnel) {
  const { server = [], client = [] } = tunnel.processes();
  return [...server, ...client].reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

/**
 * (a) and (b): `connections` connections each send `bytes` through the echo
 * and read them back. With `perfStat`, the kernel's counts for the tunnel
 * processes come back too, per GB each way (BENCH_PERF=1).
 */
export async function bulk(tunnel, { bytes, connections, perfStat = false }) {
  const { server = [], client = [] } = tunnel.processes();
  const pids = [...server, ...client];
  const userSystem = () => pids.map(cpuSplit).reduce((a, b) => ({ user: a.user + b.user, system: a.system + b.system }), { user: 0, system: 0 });
  const counting = perfStat && pids.length > 0 ? startPerfStat(pids) : null;
  try {
    const cpuBefore = tunnelCpu(tunnel);
    const splitBefore = userSystem();
    const result = await load({ mode: 'bulk', port: tunnel.port, bytes, connections }, `bulk x${connections}`);
    const gb = (bytes * connections) / 1e9;
    const cpuPerGB = (tunnelCpu(tunnel) - cpuBefore) / gb;
    const splitAfter = userSystem();
    if (!counting) return { mbps: result.mbps, cpuPerGB };
    const counts = await counting.stop();
    const perGB = (event) => (counts[event] ?? NaN) / gb;
    return {
      mbps: result.mbps,
      cpuPerGB,
      perf: {
        taskSecondsPerGB: perGB('task-clock') / 1000,
        userSecondsPerGB: (splitAfter.user - splitBefore.user) / gb,
        systemSecondsPerGB: (splitAfter.system - splitBefore.system) / gb,
        contextSwitchesPerGB: perGB('context-switches'),
        pageFaultsPerGB: perGB('page-faults'),
        syscallsPerGB: perGB('raw_syscalls:sys_enter'),
      },
    };
  } finally {
    // A failed transfer must not leave perf attached and running.
    await counting?.stop();
  }
}

/** (c): a new TCP connection per 64-byte request and response, `concurrency` at once. */
export async function rate(tunnel, { seconds, concurrency }) {
  const cpuBefore = tunnelCpu(tunnel);
  const result = await load({ mode: 'rate', port: tunnel.port, seconds, concurrency, size: 64 }, 'connection rate');
  const cpuMsPerRequest = ((tunnelCpu(tunnel) - cpuBefore) * 1000) / result.count;
  const errors = Object.values(result.errors).reduce((a, b) => a + b, 0);
  return { perSecond: result.perSecond, p50: result.p50, p99: result.p99, cpuMsPerRequest, errors, errorKinds: result.errors };
}

/**
 * (d) baseline: 64-byte ping-pongs on one connection to the interactive
 * target, nothing else running. Also the tunnel processes' CPU per round
 * trip (warm-up included): steadier than the latency on a shared machine, and
 * what an idle hop's latency is made of when the path is otherwise free.
 */
export async function latencyIdle(tunnel, { seconds }) {
  const cpuBefore = tunnelCpu(tunnel);
  const result = await load({ mode: 'pingpong', port: tunnel.interactivePort, seconds, size: 64 }, 'ping-pong');
  const cpuUsPerRoundTrip = ((tunnelCpu(tunnel) - cpuBefore) * 1e6) / (result.count + result.warmup);
  return { p50: result.p50, p99: result.p99, cpuUsPerRoundTrip };
}

/**
 * (d): the same ping-pongs while another connection through the same tunnel
 * (the same session, the same TCP connection) echoes bulk data flat out, to
 * another target process.
 */
export async function latencyLoaded(tunnel, { seconds }) {
  const saturator = spawnChild(process.execPath, [loadScript, JSON.stringify({ mode: 'saturate', port: tunnel.port })], { collectStdout: true });
  try {
    await waitForOutput(saturator, /STARTED/, 'bulk load');
    await sleep(500); // past slow start and window growth
    await tunnel.diag?.(); // starts the diagnostics' window (BENCH_DIAG=1)
    const result = await load({ mode: 'pingpong', port: tunnel.interactivePort, seconds, size: 64 }, 'ping-pong under load');
    const diag = await tunnel.diag?.();
    saturator.stdin.end();
    const { code } = await saturator.exited;
    if (code !== 0) throw new Error(`bulk load failed (exit ${code})\n${saturator.stderrTail()}`);
    const lines = saturator.stdoutText().trim().split('\n');
    return { p50: result.p50, p99: result.p99, loadMBps: JSON.parse(lines[lines.length - 1]).mbps, ...(diag ? { diag } : {}) };
  } finally {
    await stopChild(saturator);
  }
}

/**
 * (e): RSS growth of the tunnel's server-side and client-side processes while
 * `connections` idle connections (one round trip each) are held open.
 * `warmup` connections are opened and closed first so one-off costs (code,
 * first buffers) are in the baseline, not in the per-connection figure.
 */
export async function memory(tunnel, { connections, warmup, settleMs }) {
  const { server = [], client = [] } = tunnel.processes();
  if (server.length + client.length === 0) return null;
  const warm = spawnChild(process.execPath, [loadScript, JSON.stringify({ mode: 'idle', port: tunnel.port, connections: warmup, parallel: 50 })], { collectStdout: true });
  await waitForOutput(warm, /OPEN \d+/, 'warm-up connections', 120_000);
  await stopChild(warm);
  await sleep(settleMs);
  // sshd forks per connection: list its tree again each time. A one-process kind (node-tcp-relay) has no client side.
  const pids = (side) => tunnel.processes()[side] ?? [];
  const rss = (side) => pids(side).reduce((sum, pid) => sum + rssBytes(pid), 0);
  const before = { server: rss('server'), client: rss('client') };
  const holder = spawnChild(process.execPath, [loadScript, JSON.stringify({ mode: 'idle', port: tunnel.port, connections, parallel: 100 })], { collectStdout: true });
  try {
    const [, open, failed] = await waitForOutput(holder, /OPEN (\d+) (\d+)/, 'idle connections', 300_000);
    await sleep(settleMs);
    const after = { server: rss('server'), client: rss('client') };
    const perConnection = (side) => (pids(side).length === 0 ? undefined : (after[side] - before[side]) / Number(open));
    return {
      open: Number(open),
      failed: Number(failed),
      serverBytes: perConnection('server'),
      clientBytes: perConnection('client'),
      serverRss: after.server,
      clientRss: after.client,
    };
  } finally {
    await stopChild(holder);
  }
}
