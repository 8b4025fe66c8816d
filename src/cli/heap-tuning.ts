import v8 from 'node:v8';

/**
 * Keeps V8's young generation at its initial size (1 MiB semi-spaces) in
 * the muxtun process, unless the user tunes the young generation already
 * (`--max-semi-space-size`, `--semi-space-growth-factor` in the node flags
 * or NODE_OPTIONS).
 *
 * Why: a tunnel allocates a Buffer per read and per decrypted record and
 * drops it a moment later. Under bulk load V8 grows the young generation to
 * 16 MiB semi-spaces; while the old generation is small (~10 MiB in a fresh
 * process) its free space is then below the young generation's size, so V8
 * starts a major collection again and again (about 50 in 4 s of bulk per
 * process, a quarter of the CPU in marking). With the young generation kept
 * small, short-lived Buffers die in cheap scavenges: in the same bench runs
 * (docs/benchmarks.md, "Garbage collection") the ping under bulk load had a
 * 1.1-1.4x lower p99, idle connections took about half the memory in serve,
 * and a fresh process's first bulk transfer ran ~1.4x faster; the idle
 * ping's p99 rose by 0.1-0.7 ms (more, smaller scavenges). V8 reads the flag
 * each time it considers growing the young generation, so setting it here
 * at start-up takes effect (measured: the major collections stop); it needs
 * no node command-line flag, which the single binary and
 * `node bin/muxtun.js` could not carry.
 */
export function tuneHeapForStreaming(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
  setFlags: (flags: string) => void = v8.setFlagsFromString,
): boolean {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((flag) => /^--(max-semi-space-size|semi-space-growth-factor|max_semi_space_size|semi_space_growth_factor)\b/.test(flag))) return false;
  setFlags('--semi-space-growth-factor=1');
  return true;
}
