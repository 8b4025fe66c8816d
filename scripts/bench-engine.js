// `npm run bench:engine`: our muxado engine against the Go reference on the
// same workloads over loopback TCP, in one run. Each implementation runs an
// echo server process and a client process; the client measures.
// Options (env): BENCH_BULK_BYTES (default 256 MiB), BENCH_RR_SECONDS (3),
// BENCH_IDLE_STREAMS (10000), BENCH_WRITE=1 to record the table in docs/benchmarks.md.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { buildGoPeer, goPeerBinary, root, runJsonChild, spawnChild, stopChild, waitForOutput } from './bench/procs.js';
import { machine, table } from './bench/report.js';

const bulkBytes = Number(process.env.BENCH_BULK_BYTES ?? 256 * 2 ** 20);
const rrSeconds = Number(process.env.BENCH_RR_SECONDS ?? 3);
const idleStreams = Number(process.env.BENCH_IDLE_STREAMS ?? 10_000);

/** Runs `client(port)` against an echo server started with `command args`, which prints "LISTENING <port>". */
async function withEchoServer(what, command, args, client) {
  const server = spawnChild(command, args);
  try {
    const [, port] = await waitForOutput(server, /LISTENING (\d+)/, what, 60_000);
    return await client(port);
  } finally {
    await stopChild(server);
  }
}

function runOurs() {
  return withEchoServer('the engine echo server', process.execPath, [path.join(root, 'scripts/bench/engine-echo-server.js')], (port) =>
    runJsonChild(process.execPath, ['--expose-gc', path.join(root, 'scripts/bench/engine-client.js'), port, String(bulkBytes), String(rrSeconds), String(idleStreams)], 'the engine client'),
  );
}

function runGo() {
  return withEchoServer('the Go echo server', goPeerBinary, ['server', '-listen', '127.0.0.1:0'], (port) =>
    runJsonChild(goPeerBinary, ['bench', '-connect', `127.0.0.1:${port}`, '-bulk-bytes', String(bulkBytes), '-rr-seconds', `${rrSeconds}s`, '-idle-streams', String(idleStreams)], 'the Go bench client'),
  );
}

const go = buildGoPeer();
console.error(`bench:engine: ${machine()}`);
console.error(`bench:engine: bulk ${bulkBytes / 2 ** 20} MiB each way, request/response for ${rrSeconds} s, ${idleStreams} idle streams`);
// Interleaved: ours, Go, ours, Go; the better of two runs each, on a shared noisy machine.
const runs = { ours: [], go: [] };
for (let i = 0; i < 2; i++) {
  runs.ours.push(await runOurs());
  if (go.ok) runs.go.push(await runGo());
}
const best = (list, key, lower = false) => (list.length === 0 ? NaN : list.map((r) => r[key]).reduce((a, b) => (lower ? Math.min(a, b) : Math.max(a, b))));
const rows = [
  ['single-stream bulk, MB/s', 'singleStreamMBps', false],
  ['32 parallel streams bulk, MB/s', 'parallelMBps', false],
  ['open + 64 B request + 64 B response + close, per s', 'requestsPerSecond', false],
  [`heap bytes per idle open stream (${idleStreams} streams)`, 'heapBytesPerStream', true],
].map(([label, key, lower]) => {
  const ours = best(runs.ours, key, lower);
  const theirs = best(runs.go, key, lower);
  const ratio = Number.isNaN(theirs) ? 'n/a' : lower ? `${(theirs / ours).toFixed(2)}x less` : `${(ours / theirs).toFixed(2)}x`;
  const fmt = (v) => (Number.isNaN(v) ? 'n/a' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
  return [label, fmt(ours), fmt(theirs), ratio];
});
const rendered = table(['workload', 'muxtun engine (Node)', 'Go reference', 'ratio (ours vs Go)'], rows);
console.log(rendered);
if (!go.ok) console.log(`\nGo reference not measured: ${go.reason}`);

if (process.env.BENCH_WRITE === '1') {
  const file = path.join(root, 'docs/benchmarks.md');
  const start = '<!-- bench:engine -->';
  const end = '<!-- /bench:engine -->';
  const section = `${start}\n## Engine: muxtun's muxado vs the Go reference\n\n${new Date().toISOString().slice(0, 10)}, ${machine()}; \`npm run bench:engine\` (best of 2 interleaved runs; bulk ${bulkBytes / 2 ** 20} MiB through an echo, MB/s of payload each way).\n\n${rendered}\n${end}`;
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nNumbers from one run each, on the machine named; ratios compare runs made in the same session.\n';
  doc = doc.includes(start) ? doc.replace(new RegExp(`${start}[\\s\\S]*${end}`), section) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, doc);
  console.error(`bench:engine: recorded in ${path.relative(root, file)}`);
}
