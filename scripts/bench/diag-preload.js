// Loaded into `muxtun serve` and `muxtun connect` with `node --import` when
// the bench runs with BENCH_DIAG=1 (never otherwise): what the event loop,
// the GC and the TLS socket's user-space write queue do while the loaded
// ping-pong runs. SIGUSR2 writes the figures since the previous SIGUSR2 to
// $MUXTUN_BENCH_DIAG_DIR/<pid>.json and starts over, so the bench can read
// exactly the ping's window.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const dir = process.env.MUXTUN_BENCH_DIAG_DIR;
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
let gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0, majorWhy: {} };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++;
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      gc.majorCount++;
      gc.majorMs += entry.duration;
      // Why V8 collected: 'external' = forced by Buffer (ArrayBuffer) memory
      // pressure; 'limit' = incremental marking a heap allocation limit started
      // (callback flag kGCCallbackScheduleIdleGarbageCollection); else the raw flags.
      const flags = entry.detail.flags;
      const why =
        flags & constants.NODE_PERFORMANCE_GC_FLAGS_ALL_EXTERNAL_MEMORY ? 'external' : flags & constants.NODE_PERFORMANCE_GC_FLAGS_SCHEDULE_IDLE ? 'limit' : `flags${flags}`;
      gc.majorWhy[why] = (gc.majorWhy[why] ?? 0) + 1;
    }
  }
}).observe({ entryTypes: ['gc'] });

// Bytes waiting in Node ahead of the kernel: the TLS sockets' (encrypted)
// writable buffers, sampled every 2 ms (the session's transport), and the
// plain TCP sockets' (the forwarded connections').
let samples = [];
const sampler = setInterval(() => {
  let tls = 0;
  let tcp = 0;
  for (const handle of process._getActiveHandles()) {
    if (typeof handle?.writableLength !== 'number') continue;
    if (handle.encrypted) tls += handle.writableLength;
    else tcp += handle.writableLength;
  }
  samples.push([tls, tcp]);
}, 2);
sampler.unref();

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0);
process.on('SIGUSR2', () => {
  const tls = samples.map((s) => s[0]).sort((a, b) => a - b);
  const tcp = samples.map((s) => s[1]).sort((a, b) => a - b);
  const report = {
    eldMs: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
    gc: { ...gc },
    queuedTls: { p50: pct(tls, 0.5), p99: pct(tls, 0.99), max: tls[tls.length - 1] ?? 0 },
    queuedTcp: { p50: pct(tcp, 0.5), p99: pct(tcp, 0.99), max: tcp[tcp.length - 1] ?? 0 },
  };
  if (dir) writeFileSync(path.join(dir, `${process.pid}.json`), JSON.stringify(report));
  eld.reset();
  gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0, majorWhy: {} };
  samples = [];
});
