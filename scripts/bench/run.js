// `npm run bench`: muxtun against no tunnel, against `ssh -L` and against a
// Go tunnel on the reference muxado, on the same workloads, in one run, on
// loopback. It starts an echo target, the tunnels (real `muxtun serve` +
// `muxtun connect -L` processes; an OpenSSH server of its own plus `ssh -L`;
// go-tunnel/main.go's server + client) and load generators, each in its own process, and
// interleaves the kinds round by round so machine noise hits all of them.
//
//   npm run bench                      full run (about 6 minutes on 2 cores)
//   npm run bench -- --smoke           seconds, tiny sizes: proves the bench still works (CI)
//   npm run bench -- --write           record the table in docs/benchmarks.md (or BENCH_WRITE=1)
//   npm run bench -- --profile         run serve/connect under --cpu-prof; print their top frames
//
// Sizes (env): BENCH_BULK_BYTES (512 MiB), BENCH_PARALLEL_BYTES (per connection,
// BENCH_BULK_BYTES / 16), BENCH_RATE_SECONDS (3), BENCH_LATENCY_SECONDS (2),
// BENCH_IDLE_CONNECTIONS (2000), BENCH_ROUNDS (3): about 5 minutes with the
// five default kinds on a 2-core machine. Selection:
// BENCH_KINDS=direct,muxtun,muxtun-ws,ssh,go-muxado (node-tls-pipe: a TLS connection per forwarded connection and pipe(), the least a Node tunnel does; node-tcp-relay: one Node process that accepts, dials and pipes plain TCP; muxtun-ws: the TLS inside a WebSocket to serve --ws-listen;
// go-muxado: scripts/bench/go-tunnel built with Go against Debian's muxado package, skipped without them; also muxtun-noresume: connect --no-resume,
// muxtun-metrics: --metrics on both, scraped every second, with the median ratio to muxtun printed) and BENCH_WORKLOADS=memory,bulk,parallel,rate,latency;
// BENCH_COMPARE=../other-checkout[,...] adds other built copies of muxtun as
// kinds of their own (and their muxtun-ws when that is selected), so a change
// is measured against HEAD in the same rounds. BENCH_DIAG=1 loads
// diag-preload.js into serve and connect and prints, per loaded ping-pong,
// their event-loop delay, GC pauses and bytes queued in their TLS sockets.
// BENCH_PERF=1 counts, with `perf stat`, the tunnel processes' context
// switches, page faults and system calls per GB during bulk (a table of medians at the end).
// BENCH_NODE_FLAGS="--max-semi-space-size=32" adds this build again, run
// with those node flags, as kind muxtun+flags.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { root, spawnChild, stopChild, waitForOutput } from './procs.js';
import { perfAvailable } from './perf-stat.js';
import { summariseProfile } from './profile.js';
import { best, caveats, machine, median, medianRatios, renderTable, verdicts, writeSection } from './report.js';
import { direct, goMuxado, muxtun, nodeTcpRelay, nodeTlsPipe, ssh } from './tunnels.js';
import * as workloads from './workloads.js';

const argv = process.argv.slice(2);
for (const arg of argv) {
  if (!['--smoke', '--write', '--profile'].includes(arg)) {
    console.error(`bench: unknown argument ${arg} (known: --smoke, --write, --profile; sizes go in BENCH_* variables)`);
    process.exit(2);
  }
}
const smoke = argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
const profiling = argv.includes('--profile') || process.env.BENCH_PROFILE === '1';
const write = argv.includes('--write') || process.env.BENCH_WRITE === '1';
const perfWanted = process.env.BENCH_PERF === '1';

function envNumber(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`bench: ${name}="${text}" is not a positive number`);
    process.exit(2);
  }
  return value;
}
function envList(name, known, fallback) {
  const list = (process.env[name] || fallback.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = list.filter((item) => !known.includes(item));
  if (unknown.length > 0) {
    console.error(`bench: ${name}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`);
    process.exit(2);
  }
  return list;
}

const bulkBytes = envNumber('BENCH_BULK_BYTES', smoke ? 4 * 2 ** 20 : 2 ** 29);
const config = {
  bulkBytes,
  parallelConnections: 8,
  parallelBytes: envNumber('BENCH_PARALLEL_BYTES', Math.ceil(bulkBytes / 16)),
  rateSeconds: envNumber('BENCH_RATE_SECONDS', smoke ? 0.5 : 3),
  rateConcurrency: 50,
  latencySeconds: envNumber('BENCH_LATENCY_SECONDS', smoke ? 0.5 : 2),
  idleConnections: envNumber('BENCH_IDLE_CONNECTIONS', smoke ? 100 : 2000),
  rounds: envNumber('BENCH_ROUNDS', smoke ? 1 : 3),
};
const selectedKinds = envList('BENCH_KINDS', ['direct', 'muxtun', 'muxtun-ws', 'muxtun-noresume', 'muxtun-metrics', 'ssh', 'go-muxado', 'node-tls-pipe', 'node-tcp-relay'], ['direct', 'muxtun', 'muxtun-ws', 'ssh', 'go-muxado']);
const selectedWorkloads = envList('BENCH_WORKLOADS', ['memory', 'bulk', 'parallel', 'rate', 'latency'], ['memory', 'bulk', 'parallel', 'rate', 'latency']);

const profileDir = profiling ? path.join(root, '.tmp/bench-profiles', new Date().toISOString().replace(/[:.]/g, '-')) : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });

const log = (message) => console.error(`bench: ${message}`);
const started = performance.now();
const children = [];
let cleaningUp = null;
async function cleanUp() {
  cleaningUp ??= (async () => {
    for (const stop of children.reverse()) await stop().catch(() => {});
  })();
  return cleaningUp;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => void cleanUp().then(() => process.exit(130)));
}

log(`${machine()}`);
log(
  `${smoke ? 'SMOKE run (tiny sizes, numbers mean nothing): ' : ''}bulk ${config.bulkBytes} B, ${config.parallelConnections} x ${config.parallelBytes} B, ` +
    `rate ${config.rateSeconds} s, ping-pong ${config.latencySeconds} s, ${config.idleConnections} idle connections, ${config.rounds} round(s)`,
);

// Two echo targets: bulk data and ping-pongs must not queue in one target's event loop.
const targets = {};
for (const role of ['bulk', 'interactive']) {
  const target = spawnChild(process.execPath, [path.join(root, 'scripts/bench/target.js')]);
  children.push(() => stopChild(target));
  targets[role] = Number((await waitForOutput(target, /LISTENING (\d+)/, `${role} echo target`))[1]);
}

// BENCH_COMPARE=dir[,dir]: other built checkouts of muxtun, measured as extra kinds in the same rounds.
const compared = (process.env.BENCH_COMPARE || '').split(',').filter(Boolean).map((dir) => path.resolve(dir));
const kinds = [
  selectedKinds.includes('direct') && direct,
  selectedKinds.includes('muxtun') && muxtun({ profileDir }),
  // What session resumption costs: the same muxtun with connect --no-resume.
  selectedKinds.includes('muxtun-noresume') && muxtun({ profileDir, name: 'muxtun --no-resume', connectFlags: ['--no-resume'] }),
  // What watching costs: --metrics on serve and connect, each scraped every second (Prometheus' default is 15 s).
  selectedKinds.includes('muxtun-metrics') && muxtun({ profileDir, name: 'muxtun-metrics', metrics: { everyMs: 1_000 } }),
  // The same TLS inside a WebSocket, straight to serve --ws-listen (no reverse proxy): what the transport costs.
  selectedKinds.includes('muxtun-ws') && muxtun({ profileDir, name: 'muxtun-ws', webSocket: true }),
  // BENCH_NODE_FLAGS="--max-semi-space-size=32 ...": the same build again with these node flags, as kind muxtun+flags.
  process.env.BENCH_NODE_FLAGS && muxtun({ profileDir, name: 'muxtun+flags', nodeFlags: process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean) }),
  ...compared.flatMap((checkout) => [
    muxtun({ profileDir, checkout, name: `muxtun@${path.basename(checkout)}` }),
    // With muxtun-ws selected, the other checkout's WebSocket transport too.
    selectedKinds.includes('muxtun-ws') && muxtun({ profileDir, checkout, name: `muxtun-ws@${path.basename(checkout)}`, webSocket: true }),
  ]),
  selectedKinds.includes('ssh') && ssh(),
  // The same design in Go on the reference muxado: the peer issue 16 compares latency with.
  selectedKinds.includes('go-muxado') && goMuxado(),
  // The least a Node tunnel does (TLS + pipe(), no multiplexing): what Node itself costs here.
  selectedKinds.includes('node-tls-pipe') && nodeTlsPipe(),
  // One Node process that accepts, dials and pipes plain TCP: the least Node does per connection.
  selectedKinds.includes('node-tcp-relay') && nodeTcpRelay(),
].filter(Boolean);
const skipped = new Map();
const tunnels = new Map();
try {
  for (const kind of kinds) {
    const availability = kind.available();
    // muxtun is what we measure: without it the run is a failure, not a table of skips.
    if (!availability.ok && kind.name === 'muxtun') throw new Error(`muxtun cannot run: ${availability.reason}`);
    if (!availability.ok) {
      skipped.set(kind.name, availability.reason);
      log(`skipping ${kind.name}: ${availability.reason}`);
      continue;
    }
    try {
      const tunnel = await kind.start(targets);
      children.push(tunnel.stop);
      tunnels.set(kind.name, tunnel);
      log(`${kind.name}: up, local port ${tunnel.port}`);
    } catch (error) {
      // muxtun must come up; the comparison may be missing.
      if (kind.name === 'muxtun') throw error;
      skipped.set(kind.name, `did not start: ${error.message.split('\n')[0]}`);
      log(`skipping ${kind.name}: ${error.stack}`);
    }
  }

  const runs = new Map([...tunnels.keys()].map((name) => [name, {}]));
  const record = (name, workload, result) => (runs.get(name)[workload] ??= []).push(result);
  const names = [...tunnels.keys()];
  // Round r starts with a different kind, so no kind always runs first (or last) on a warming machine.
  const order = (round) => names.map((_, i) => names[(i + round) % names.length]);
  const say = (workload, name, text) => log(`${workload.padEnd(14)} ${name.padEnd(Math.max(7, ...names.map((n) => n.length)))} ${text}`);

  if (selectedWorkloads.includes('memory')) {
    // First, while every tunnel process is fresh: memory does not grow into space earlier workloads left behind.
    for (const name of names) {
      const result = await workloads.memory(tunnels.get(name), { connections: config.idleConnections, warmup: Math.min(200, config.idleConnections), settleMs: smoke ? 200 : 2_000 });
      if (!result) continue;
      record(name, 'memory', result);
      const perConn = (bytes) => (bytes === undefined ? 'none' : `${Math.round(bytes)} B/conn`);
      say('memory', name, `server ${perConn(result.serverBytes)}, client ${perConn(result.clientBytes)} (${result.open} open)`);
    }
  }

  const perf = perfWanted ? perfAvailable() : { ok: false };
  if (perfWanted && !perf.ok) log(`BENCH_PERF: not counting: ${perf.reason}`);
  const describePerf = (p) => (p ? `; per GB: ${(p.contextSwitchesPerGB / 1000).toFixed(1)}k context switches, ${(p.pageFaultsPerGB / 1000).toFixed(1)}k page faults, ${(p.syscallsPerGB / 1000).toFixed(1)}k syscalls` : '');
  const plan = [
    ['bulk', () => (t) => workloads.bulk(t, { bytes: config.bulkBytes, connections: 1, perfStat: perf.ok }), (r) => `${r.mbps.toFixed(0)} MB/s, ${r.cpuPerGB.toFixed(2)} core-s/GB${describePerf(r.perf)}`],
    ['parallel', () => (t) => workloads.bulk(t, { bytes: config.parallelBytes, connections: config.parallelConnections }), (r) => `${r.mbps.toFixed(0)} MB/s`],
    ['rate', () => (t) => workloads.rate(t, { seconds: config.rateSeconds, concurrency: config.rateConcurrency }), (r) => `${r.perSecond.toFixed(0)}/s, p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms, ${r.cpuMsPerRequest.toFixed(3)} core-ms/request${r.errors ? `, ${r.errors} errors` : ''}`],
    ['latencyIdle', () => (t) => workloads.latencyIdle(t, { seconds: config.latencySeconds }), (r) => `p50 ${r.p50.toFixed(3)} p99 ${r.p99.toFixed(3)} ms, ${r.cpuUsPerRoundTrip.toFixed(0)} core-µs/round trip`],
    ['latencyLoaded', () => (t) => workloads.latencyLoaded(t, { seconds: config.latencySeconds }), (r) => `p50 ${r.p50.toFixed(3)} p99 ${r.p99.toFixed(3)} ms beside ${r.loadMBps.toFixed(0)} MB/s${r.diag ? `\n${describeDiag(r.diag)}` : ''}`],
  ].filter(([workload]) => selectedWorkloads.includes(workload.startsWith('latency') ? 'latency' : workload));

  for (const [workload, make, describe] of plan) {
    const run = make();
    for (let round = 0; round < config.rounds; round++) {
      for (const name of order(round)) {
        const result = await run(tunnels.get(name));
        record(name, workload, result);
        say(workload, name, describe(result));
      }
    }
  }

  // The best run per kind and workload; one row's numbers come from one run.
  const pickers = {
    memory: (r) => -(r.serverBytes + (r.clientBytes ?? 0)),
    bulk: (r) => r.mbps,
    parallel: (r) => r.mbps,
    rate: (r) => r.perSecond,
    latencyIdle: (r) => -r.p99,
    latencyLoaded: (r) => -r.p99,
  };
  const chosen = {};
  for (const [name, byWorkload] of runs) {
    chosen[name] = { name };
    for (const [workload, list] of Object.entries(byWorkload)) chosen[name][workload] = best(list, pickers[workload]);
  }

  await cleanUp();
  const seconds = (performance.now() - started) / 1000;
  const rendered = renderTable(chosen, config, skipped);
  const targetLines = verdicts(chosen, skipped);
  const notes = caveats(chosen, config);
  for (const [name, reason] of skipped) notes.push(`${name} was skipped: ${reason}.`);
  const goTls = kinds.find((kind) => kind.name === 'go-muxado' && tunnels.has(kind.name))?.tls();
  if (goTls) notes.push(`go-muxado: scripts/bench/go-tunnel on Debian's muxado (a 64 KiB window and io.Copy's two 32 KiB buffers per forwarded connection, on each side), its server and client in Go, over ${goTls} with a self-signed P-256 certificate pinned by the client.`);

  console.log(rendered);
  console.log('');
  // Variants of muxtun (muxtun-metrics, BENCH_COMPARE checkouts) beside it, by medians: what a change or a flag costs.
  for (const name of [...runs.keys()].filter((n) => n.startsWith('muxtun') && n !== 'muxtun' && runs.has('muxtun'))) {
    console.log(`${name} ÷ muxtun, median of ${config.rounds} rounds (spread: the lowest and highest per-round ratio); above 1 is better for MB/s and requests/s, below 1 for ms, core-seconds and bytes:`);
    console.log(medianRatios(runs.get(name), runs.get('muxtun')));
    console.log('');
  }
  if (perf.ok) console.log(`${perfTable(runs)}\n`);
  if (targetLines.length > 0) console.log(`Targets:\n${targetLines.join('\n')}\n`);
  for (const note of notes) console.log(`Note: ${note}`);
  log(`done in ${seconds.toFixed(0)} s`);

  if (profileDir) {
    for (const file of readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
      const summary = summariseProfile(path.join(profileDir, file));
      console.log(`\nProfile ${file}: busy ${summary.busySeconds.toFixed(1)} s, idle ${summary.idleSeconds.toFixed(1)} s; top frames by self time:`);
      for (const { frame, at, share } of summary.top) console.log(`  ${(share * 100).toFixed(1).padStart(5)}%  ${frame}  ${at}`);
    }
    console.log(`\nProfiles kept in ${path.relative(root, profileDir)} (open them in Chrome DevTools).`);
  }

  if (write) {
    if (smoke || profiling || compared.length > 0) {
      log(`not recording a ${smoke ? 'smoke' : profiling ? 'profiled' : 'BENCH_COMPARE'} run in docs/benchmarks.md: it is not the repository's benchmark`);
    } else {
      const sshVersion = versionOf('ssh', ['-V']);
      const commit = describeCommit();
      const header =
        `## Tunnel: muxtun vs ssh -L vs go-muxado vs no tunnel\n\n` +
        `${new Date().toISOString().slice(0, 10)}, muxtun ${commit}, ${machine()}, ${sshVersion}; \`npm run bench\` in ${Math.round(seconds / 60)} min ` +
        `(best of ${config.rounds} interleaved rounds per workload). Everything on loopback, each piece its own process: a Node echo target, ` +
        `the load generators, \`muxtun serve\` + \`muxtun connect -L\` over TLS 1.3 (default suite), \`sshd\` + \`ssh -N -L\` with OpenSSH's default cipher, ` +
        `and go-muxado: the same design in Go on the reference muxado (scripts/bench/go-tunnel, TLS 1.3). ` +
        `MB/s is payload each way (every byte goes through the echo and back). ` +
        `x = muxtun's number divided by the other's: above 1 is better for MB/s and requests/s, below 1 is better for core-seconds, ms and bytes.`;
      const body = [header, rendered, targetLines.length ? `Targets of the performance issue, from this run:\n\n${targetLines.join('\n')}` : '', notes.map((n) => `Note: ${n}`).join('\n')]
        .filter(Boolean)
        .join('\n\n');
      writeSection(path.join(root, 'docs/benchmarks.md'), body);
      log('recorded in docs/benchmarks.md');
    }
  }
} catch (error) {
  log(`failed: ${error.stack ?? error}`);
  await cleanUp();
  process.exitCode = 1;
}

/** BENCH_DIAG=1: one line per process of what diag-preload.js saw during the loaded ping. */
function describeDiag(diag) {
  const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
  return Object.entries(diag)
    .map(([role, d]) =>
      `      ${role.padEnd(8)} event-loop delay p50 ${d.eldMs.p50.toFixed(2)} p99 ${d.eldMs.p99.toFixed(2)} max ${d.eldMs.max.toFixed(2)} ms; ` +
      `GC ${d.gc.count}x ${d.gc.totalMs.toFixed(0)} ms (max ${d.gc.maxMs.toFixed(1)}; major ${d.gc.majorCount}x ${d.gc.majorMs.toFixed(0)} ms ${JSON.stringify(d.gc.majorWhy ?? {})}); ` +
      `queued in TLS sockets p50 ${kib(d.queuedTls.p50)} p99 ${kib(d.queuedTls.p99)} max ${kib(d.queuedTls.max)}, in TCP sockets p99 ${kib(d.queuedTcp.p99)}`,
    )
    .join('\n');
}

/** BENCH_PERF=1: the medians over the rounds of the kernel's counts per GB of bulk, a row per kind. */
function perfTable(runs) {
  const lines = [
    'bulk, tunnel processes, per GB each way (perf stat, median of the rounds):',
    '',
    '| kind | core-s | of which user / kernel | context switches | page faults | system calls | bytes per system call |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const [name, byWorkload] of runs) {
    const list = (byWorkload.bulk ?? []).map((r) => r.perf).filter(Boolean);
    if (list.length === 0) continue;
    const m = (key) => median(list.map((p) => p[key]).filter(Number.isFinite));
    const k = (n) => `${(n / 1000).toFixed(1)}k`;
    lines.push(`| ${name} | ${m('taskSecondsPerGB').toFixed(2)} | ${m('userSecondsPerGB').toFixed(2)} / ${m('systemSecondsPerGB').toFixed(2)} | ${k(m('contextSwitchesPerGB'))} | ${k(m('pageFaultsPerGB'))} | ${k(m('syscallsPerGB'))} | ${Math.round(2e9 / m('syscallsPerGB'))} |`);
  }
  return lines.join('\n');
}

/** First line a `--version`-style command prints (ssh -V writes to stderr). */
function versionOf(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) return `${command}: not installed`;
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0];
}

/** The commit measured, and whether src/ differed from it (the bench builds the working tree). */
function describeCommit() {
  const git = (...args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD');
  if (!head) return 'outside git';
  return git('status', '--porcelain', '--', 'src') ? `${head} with uncommitted changes in src/` : head;
}
