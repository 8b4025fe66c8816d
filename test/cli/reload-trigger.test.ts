import { rename, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { onReload, type ReloadTrigger } from '../../src/cli/reload-trigger.js';
import { tempDir } from '../support/fs.js';
import { waitUntil, within } from '../support/wait.js';

let trigger: ReloadTrigger | null = null;
afterEach(() => {
  trigger?.dispose();
  trigger = null;
});

function recorder(): { reasons: string[]; reload: (why: string) => Promise<void> } {
  const reasons: string[] = [];
  return { reasons, reload: async (why) => void reasons.push(why) };
}

describe('onReload', () => {
  it('reloads when a watched file changes content, also when it is replaced by rename', async () => {
    const dir = await tempDir();
    const file = join(dir, 'serve.toml');
    await writeFile(file, 'port = 1\n');
    const { reasons, reload } = recorder();
    trigger = onReload({ files: [file], reload, intervalMs: 20, sighup: false });
    await writeFile(file, 'port = 2\n');
    await waitUntil('a reload after a write', () => reasons.length === 1);
    await writeFile(join(dir, 'next'), 'port = 3\n');
    await rename(join(dir, 'next'), file);
    await waitUntil('a reload after a rename', () => reasons.length === 2);
    expect(reasons).toEqual([`${file} changed`, `${file} changed`]);
  });

  it('does not reload for a touch or a rewrite with the same bytes', async () => {
    const dir = await tempDir();
    const file = join(dir, 'users.toml');
    await writeFile(file, 'a = 1\n');
    const { reasons, reload } = recorder();
    trigger = onReload({ files: [file], reload, intervalMs: 20, sighup: false });
    const later = new Date(Date.now() + 5_000);
    await utimes(file, later, later);
    await writeFile(file, 'a = 1\n');
    // A real change afterwards is the event that proves the watcher looked at the touches and let them be.
    await writeFile(file, 'a = 2\n');
    await waitUntil('the reload for the real change', () => reasons.length === 1);
    expect(reasons).toEqual([`${file} changed`]);
  });

  it('reloads on SIGHUP and stops listening once disposed', async () => {
    const { reasons, reload } = recorder();
    trigger = onReload({ files: [], reload });
    const before = process.listenerCount('SIGHUP');
    process.emit('SIGHUP', 'SIGHUP');
    await waitUntil('a reload on SIGHUP', () => reasons.length === 1);
    trigger.dispose();
    expect(process.listenerCount('SIGHUP')).toBe(before - 1);
    expect(reasons).toEqual(['SIGHUP']);
  });

  it('never runs two reloads at once: triggers during one make exactly one more', async () => {
    let active = 0;
    let most = 0;
    const reasons: string[] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    trigger = onReload({
      files: [],
      sighup: false,
      reload: async (why) => {
        active++;
        most = Math.max(most, active);
        reasons.push(why);
        if (reasons.length === 1) await first;
        active--;
      },
    });
    const running = trigger.reloadNow('one');
    void trigger.reloadNow('two');
    void trigger.reloadNow('three');
    release();
    await within(running, 5_000, 'the reloads');
    expect(most).toBe(1);
    expect(reasons).toEqual(['one', 'three']);
  });
});
