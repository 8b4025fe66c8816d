// Turns the results of `npm run bench` into the table, the verdict on each
// target of the performance issue, and the docs/benchmarks.md section.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/** The machine in one line, for the report: CPUs, memory, OS, Node. */
export function machine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** Renders rows as a Markdown table. */
export function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

const GO = 'go-muxado';
/**
 * Columns: the kinds of the issue (go-muxado when it was selected, measured
 * or skipped), then the variants and other checkouts (BENCH_COMPARE).
 */
const columns = (r, skipped = new Map()) => {
  const fixed = ['direct', 'muxtun', 'ssh -L', ...(r[GO] || skipped.has(GO) ? [GO] : [])];
  return [...fixed, ...Object.keys(r).filter((k) => !fixed.includes(k))];
};

const num = (v, digits = 0) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const ms = (v) => (v === undefined || Number.isNaN(v) ? 'n/a' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const ratio = (a, b) => (a === undefined || b === undefined || !Number.isFinite(a / b) ? '' : `${(a / b).toFixed(2)}x`);

/**
 * The best run of each kind for each workload (interleaved rounds on a
 * shared machine: noise only ever makes a run slower). `pick` chooses the
 * run, so the numbers of one row always come from the same run.
 */
export function best(runs, pick) {
  if (!runs || runs.length === 0) return undefined;
  return runs.reduce((a, b) => (pick(b) > pick(a) ? b : a));
}

/**
 * Rows: [label, cell per kind, muxtun ÷ direct, muxtun ÷ ssh -L, and
 * muxtun ÷ go-muxado when that column is shown]. `r[kind]` holds the chosen
 * run per workload for that kind; `skipped` (kind → reason) keeps a column
 * for a kind that was selected but could not run.
 */
export function renderTable(r, config, skipped = new Map()) {
  const KINDS = columns(r, skipped);
  const against = ['direct', 'ssh -L', ...[GO, 'node-tls-pipe', 'node-tcp-relay'].filter((k) => KINDS.includes(k))];
  const rows = [];
  const row = (label, cell, value) => {
    const cells = KINDS.map((k) => (r[k] ? cell(r[k]) : 'skipped'));
    const m = r.muxtun ? value(r.muxtun) : undefined;
    rows.push([label, ...cells, ...against.map((k) => ratio(m, r[k] ? value(r[k]) : undefined))]);
  };
  const has = (w) => KINDS.some((k) => r[k]?.[w]);
  if (has('bulk')) {
    row(`bulk, 1 connection, ${size(config.bulkBytes)} each way: MB/s`, (k) => num(k.bulk?.mbps), (k) => k.bulk?.mbps);
    row('&nbsp;&nbsp;tunnel CPU for it: core-seconds per GB', (k) => (k.bulk && k.name !== 'direct' ? k.bulk.cpuPerGB.toFixed(2) : '—'), (k) => (k.name === 'direct' ? undefined : k.bulk?.cpuPerGB));
  }
  if (has('parallel')) {
    row(`bulk, ${config.parallelConnections} connections × ${size(config.parallelBytes)}: MB/s in total`, (k) => num(k.parallel?.mbps), (k) => k.parallel?.mbps);
  }
  if (has('rate')) {
    row(`new connection per request (64 B each way, ${config.rateConcurrency} at once): requests/s`, (k) => num(k.rate?.perSecond), (k) => k.rate?.perSecond);
    row('&nbsp;&nbsp;request latency p50 / p99: ms', (k) => `${ms(k.rate?.p50)} / ${ms(k.rate?.p99)}`, (k) => k.rate?.p99);
    row('&nbsp;&nbsp;tunnel CPU for it: core-ms per request', (k) => (k.rate && k.name !== 'direct' ? k.rate.cpuMsPerRequest.toFixed(3) : '—'), (k) => (k.name === 'direct' ? undefined : k.rate?.cpuMsPerRequest));
  }
  if (has('latencyIdle')) {
    row('64 B ping-pong on one connection, idle: p50 / p99 ms', (k) => `${ms(k.latencyIdle?.p50)} / ${ms(k.latencyIdle?.p99)}`, (k) => k.latencyIdle?.p99);
    row('&nbsp;&nbsp;tunnel CPU for it: core-µs per round trip', (k) => (k.latencyIdle && k.name !== 'direct' ? num(k.latencyIdle.cpuUsPerRoundTrip) : '—'), (k) => (k.name === 'direct' ? undefined : k.latencyIdle?.cpuUsPerRoundTrip));
  }
  if (has('latencyLoaded')) {
    row('the same while bulk (a) runs on another connection: p50 / p99 ms', (k) => `${ms(k.latencyLoaded?.p50)} / ${ms(k.latencyLoaded?.p99)}`, (k) => k.latencyLoaded?.p99);
    row('&nbsp;&nbsp;that bulk connection meanwhile: MB/s', (k) => num(k.latencyLoaded?.loadMBps), (k) => k.latencyLoaded?.loadMBps);
  }
  if (has('memory')) {
    const mem = (side) => (k) => (k.memory ? num(k.memory[side]) : '—');
    row(`server side, RSS per idle connection (${num(config.idleConnections)} open): bytes`, mem('serverBytes'), (k) => k.memory?.serverBytes);
    row('client side, RSS per idle connection: bytes', mem('clientBytes'), (k) => k.memory?.clientBytes);
  }
  return table(['workload', ...KINDS, ...against.map((k) => `muxtun ÷ ${k}`)], rows);
}

function size(bytes) {
  if (bytes >= 2 ** 30 && bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30} GiB`;
  if (bytes >= 2 ** 20) return `${+(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${+(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * One line per target of issue 16, each from this run's numbers: met, missed
 * (by how much), or not checked (what was not measured, and why).
 */
export function verdicts(r, skipped) {
  const lines = [];
  const m = r.muxtun;
  const s = r['ssh -L'];
  const go = r[GO];
  const why = (kind) => skipped.get(kind) ?? 'not selected';
  const notChecked = (name, what) => lines.push(`- ${name}: not checked: ${what}`);
  const verdict = (name, ok, detail) => lines.push(`- ${name}: **${ok ? 'met' : 'missed'}** (${detail})`);
  // A target "muxtun ≤ factor × other" (or ≥ with `atLeast`), with what is missing named.
  const compare = ({ name, workload, kind, other, value, factor, unit, atLeast = false }) => {
    if (!m?.[workload]) return notChecked(name, `${workload} was not measured (BENCH_WORKLOADS)`);
    if (!other) return notChecked(name, `${kind} was not measured (${why(kind)})`);
    if (!other[workload]) return notChecked(name, `${workload} was not measured for ${kind}`);
    const [a, b] = [value(m[workload]), value(other[workload])];
    const x = a / b;
    const ok = atLeast ? x >= factor : x <= factor;
    const off = atLeast ? `${((1 - x / factor) * 100).toFixed(0)}% short` : `${(x / factor).toFixed(2)}x the target`;
    verdict(name, ok, `${x.toFixed(2)}x: ${unit(a)} vs ${unit(b)}${ok ? '' : `, ${off}`}`);
  };
  const msUnit = (v) => `${ms(v)} ms`;

  compare({ name: 'ping p99 while bulk runs ≤ 0.33x ssh -L', workload: 'latencyLoaded', kind: 'ssh -L', other: s, value: (w) => w.p99, factor: 0.33, unit: msUnit });
  compare({ name: 'ping p99 while bulk runs ≤ go-muxado', workload: 'latencyLoaded', kind: GO, other: go, value: (w) => w.p99, factor: 1, unit: msUnit });
  compare({ name: 'idle ping p50 ≤ 1.0x ssh -L', workload: 'latencyIdle', kind: 'ssh -L', other: s, value: (w) => w.p50, factor: 1, unit: msUnit });
  // The bench's bulk echoes both ways on one connection: upload and download are one measurement.
  compare({ name: 'bulk, 1 connection (upload and download at once) ≥ 0.9x ssh -L', workload: 'bulk', kind: 'ssh -L', other: s, value: (w) => w.mbps, factor: 0.9, atLeast: true, unit: (v) => `${num(v)} MB/s` });
  compare({ name: 'tunnel CPU per GB of that bulk ≤ 1.1x ssh -L', workload: 'bulk', kind: 'ssh -L', other: s, value: (w) => w.cpuPerGB, factor: 1.1, unit: (v) => `${v.toFixed(2)} core-s/GB` });
  compare({ name: 'new connections per second ≥ 1.2x ssh -L', workload: 'rate', kind: 'ssh -L', other: s, value: (w) => w.perSecond, factor: 1.2, atLeast: true, unit: (v) => `${num(v)}/s` });
  for (const [side, proc] of [['serverBytes', 'serve'], ['clientBytes', 'connect']]) {
    const name = `RSS per idle connection ≤ 8 KiB, ${proc}`;
    if (!m?.memory) notChecked(name, 'memory was not measured (BENCH_WORKLOADS)');
    else {
      const b = m.memory[side];
      verdict(name, b <= 8192, `${num(b)} bytes${b > 8192 ? `, ${(b / 8192).toFixed(1)}x the target` : ''}`);
    }
  }
  return lines;
}

/** The median of `values` (NaN when there are none). */
export const median = (values) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** What a variant costs beside its base, round by round (kinds run interleaved): the median of each and their ratio, with the per-round spread. */
export function medianRatios(variant, base) {
  const measures = [
    ['bulk', 'MB/s', (r) => r.mbps],
    ['bulk', 'core-s/GB', (r) => r.cpuPerGB],
    ['parallel', 'MB/s', (r) => r.mbps],
    ['rate', 'requests/s', (r) => r.perSecond],
    ['rate', 'core-ms/request', (r) => r.cpuMsPerRequest],
    ['latencyIdle', 'p50 ms', (r) => r.p50],
    ['latencyIdle', 'p99 ms', (r) => r.p99],
    ['latencyIdle', 'core-µs/round trip', (r) => r.cpuUsPerRoundTrip],
    ['latencyLoaded', 'p99 ms', (r) => r.p99],
    ['latencyLoaded', 'bulk MB/s', (r) => r.loadMBps],
    ['memory', 'server B/conn', (r) => r.serverBytes],
    ['memory', 'client B/conn', (r) => r.clientBytes],
  ];
  const rows = [];
  for (const [workload, unit, value] of measures) {
    const v = variant[workload]?.map(value);
    const b = base[workload]?.map(value);
    if (!v?.length || !b?.length) continue;
    const perRound = v.slice(0, b.length).map((x, i) => x / b[i]);
    const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 3));
    rows.push([`${workload}: ${unit}`, f(median(b)), f(median(v)), `${(median(v) / median(b)).toFixed(3)}x`, `${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}`]);
  }
  return table(['measure', 'muxtun (median)', 'variant (median)', 'ratio of medians', 'per-round ratios'], rows);
}

/** Notes on anything that makes a number less than it seems: failed requests, connections that did not open. */
export function caveats(r, config) {
  const notes = [];
  for (const kind of columns(r)) {
    const k = r[kind];
    if (!k) continue;
    if (k.rate?.errors > 0) {
      notes.push(`${kind}: ${k.rate.errors} of the connection-rate requests failed (${Object.entries(k.rate.errorKinds).map(([e, n]) => `${e} ${n}`).join(', ')}); requests/s counts only the ones that succeeded.`);
    }
    if (k.memory && k.memory.open < config.idleConnections) {
      notes.push(`${kind}: only ${k.memory.open} of ${config.idleConnections} idle connections opened (${k.memory.failed} failed); memory is per open connection.`);
    }
  }
  return notes;
}

const START = '<!-- bench:tunnel -->';
const END = '<!-- /bench:tunnel -->';
const NOTES_START = '<!-- bench:tunnel:notes -->';
const NOTES_END = '<!-- /bench:tunnel:notes -->';

/**
 * Replaces the `bench:tunnel` section of the benchmarks doc (or appends it),
 * keeping the hand-written notes block inside it and every other section.
 */
export function writeSection(file, body) {
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  let notes = '';
  const startAt = doc.indexOf(START);
  const endAt = doc.indexOf(END);
  if (startAt !== -1 && endAt > startAt) {
    const old = doc.slice(startAt, endAt);
    const n0 = old.indexOf(NOTES_START);
    const n1 = old.indexOf(NOTES_END);
    if (n0 !== -1 && n1 > n0) notes = old.slice(n0, n1 + NOTES_END.length);
  }
  const section = `${START}\n${body.trim()}\n${notes ? `\n${notes}\n` : ''}${END}`;
  doc = startAt !== -1 && endAt > startAt ? doc.slice(0, startAt) + section + doc.slice(endAt + END.length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, doc);
}
