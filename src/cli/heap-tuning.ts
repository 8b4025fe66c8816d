import v8 from 'node:v8';

/**
 * Keeps V8's young generation at its initial size (1 MiB semi-spaces) in
 * the muxtun process, and gives its old generation room to grow before a
 * major collection (HEAP_GROWING_PERCENT, below), each unless the user
 * sets that flag already (`--max-semi-space-size`,
 * `--semi-space-growth-factor`, `--heap-growing-percent` in the node flags
 * or NODE_OPTIONS). Returns whether it set anything.
 *
 * Why: a tunnel allocates a Buffer per read and per decrypted record and
 * drops it a moment later. Under bulk load V8 grows the young generation
 * (4-16 MiB semi-spaces), and with a small old generation (~10 MiB in a
 * fresh process) it then starts marking the old generation again and again
 * while the Buffers wait for a scavenge (measured: about 50 major
 * collections in 4 s of bulk per process, a quarter of the CPU in marking;
 * `--trace-incremental-marking` shows each one started by a task with the
 * heap far below its limit). With the young generation kept at 1 MiB
 * semi-spaces, scavenges come often and short-lived Buffers die in them
 * (docs/benchmarks.md, "Garbage collection"; the idle ping's p99 rose by
 * 0.1-0.7 ms: more, smaller scavenges).
 *
 * It must run before the rest of muxtun is loaded: V8 reads the flag each
 * time it considers growing the young generation, but loading muxtun's
 * modules already grows it to 4 MiB semi-spaces. bin/muxtun.js and the
 * single binary's entry therefore import this module alone, call it, and
 * only then import the CLI. Called after loading (as until 2026-12-02) it
 * left ~50 major collections per 4 s of bulk in place; called first, 0-1,
 * and the tunnel used 0.71x the CPU per GB for 1.22x the bulk in the same
 * bench run. It needs no node command-line flag, which the single binary
 * and `node bin/muxtun.js` could not carry.
 */
export function tuneHeapForStreaming(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
  setFlags: (flags: string) => void = v8.setFlagsFromString,
): boolean {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  const userSets = (pattern: RegExp): boolean => given.some((flag) => pattern.test(flag));
  let tuned = false;
  if (!userSets(/^--(max-semi-space-size|semi-space-growth-factor|max_semi_space_size|semi_space_growth_factor)\b/)) {
    setFlags('--semi-space-growth-factor=1');
    tuned = true;
  }
  if (!userSets(/^--heap[-_]growing[-_]percent\b/)) {
    setFlags(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    tuned = true;
  }
  return tuned;
}

/**
 * The old generation may grow to 4x what survived the last major
 * collection before the next one (V8 gives a heap this small at most 2x).
 * Why: a process that has idled ~10 s has its heap shrunk by V8's memory
 * reducer (limit ~18 MiB for ~9 MiB live), and the Buffers a bulk transfer
 * has in flight, counted against that limit, then start a major collection
 * again and again: ~50 per 256 MiB each way in serve and in connect, 1.6x
 * the CPU of a fresh process (measured after a 20 s pause; a fresh process
 * starts with room to spare, so short benchmarks missed it). At 4x: 0 major
 * collections during the transfer, and in the same bench run after the
 * memory workload (its processes had idled) bulk 1.24x, CPU per GB 0.77x,
 * loaded ping p99 0.59x, connect's RSS per idle connection 1.24x (6.6 KB).
 */
const HEAP_GROWING_PERCENT = 300;
