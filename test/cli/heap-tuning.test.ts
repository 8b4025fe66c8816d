/**
 * The muxtun process keeps V8's young generation small (see
 * src/cli/heap-tuning.ts), unless the user tunes it already.
 */
import { describe, expect, it } from 'vitest';
import { tuneHeapForStreaming } from '../../src/cli/heap-tuning.js';

function tuned(execArgv: string[], nodeOptions?: string): string[] {
  const set: string[] = [];
  tuneHeapForStreaming(execArgv, nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }, (flags) => set.push(flags));
  return set;
}

describe('tuneHeapForStreaming', () => {
  const both = ['--semi-space-growth-factor=1', '--heap-growing-percent=300'];

  it('keeps the young generation at its initial size and lets the old one grow 4x by default', () => {
    expect(tuned([])).toEqual(both);
    expect(tuned(['--enable-source-maps'], '--max-old-space-size=512')).toEqual(both);
  });

  it('leaves each alone when the node flags or NODE_OPTIONS set it', () => {
    expect(tuned(['--max-semi-space-size=64'])).toEqual(['--heap-growing-percent=300']);
    expect(tuned([], '--trace-gc --semi-space-growth-factor=4')).toEqual(['--heap-growing-percent=300']);
    expect(tuned(['--max_semi_space_size=8'])).toEqual(['--heap-growing-percent=300']);
    expect(tuned(['--heap-growing-percent=50'])).toEqual(['--semi-space-growth-factor=1']);
    expect(tuned(['--max-semi-space-size=8'], '--heap_growing_percent=0')).toEqual([]);
  });
});
