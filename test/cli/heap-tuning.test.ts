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
  it('keeps the young generation at its initial size by default', () => {
    expect(tuned([])).toEqual(['--semi-space-growth-factor=1']);
    expect(tuned(['--enable-source-maps'], '--max-old-space-size=512')).toEqual(['--semi-space-growth-factor=1']);
  });

  it('leaves it alone when the node flags or NODE_OPTIONS size the young generation', () => {
    expect(tuned(['--max-semi-space-size=64'])).toEqual([]);
    expect(tuned([], '--trace-gc --semi-space-growth-factor=4')).toEqual([]);
    expect(tuned(['--max_semi_space_size=8'])).toEqual([]);
  });
});
