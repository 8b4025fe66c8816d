import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';

/** How often watched files are checked, ms: "noticed within a few seconds". */
export const DEFAULT_WATCH_INTERVAL_MS = 1_000;

export interface ReloadTriggerOptions {
  /** Files whose change reloads (a config file, a users file). */
  files: readonly string[];
  /** Does the reload; a failure is the callee's to report (it must not throw for a bad file). */
  reload: (why: string) => Promise<void>;
  /** Default {@link DEFAULT_WATCH_INTERVAL_MS}. */
  intervalMs?: number;
  /** Also reload on SIGHUP. Default true. */
  sighup?: boolean;
}

export interface ReloadTrigger {
  /** Reloads now (as SIGHUP does); resolves when that reload, and any that queued behind it, are done. */
  reloadNow(why: string): Promise<void>;
  dispose(): void;
}

function digestOfNow(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/**
 * Calls `reload` on SIGHUP and when a watched file's content changes. Files
 * are polled by stat (fs.watchFile), not watched by inode: the users command
 * and editors replace files by rename, which an inode watch loses. A change
 * of mtime alone (a touch, a rewrite with the same bytes) does not reload.
 * Reloads never overlap: triggers during one make exactly one more after it.
 */
export function onReload(options: ReloadTriggerOptions): ReloadTrigger {
  const intervalMs = options.intervalMs ?? DEFAULT_WATCH_INTERVAL_MS;
  const digests = new Map<string, string | null>();
  let running: Promise<void> | null = null;
  let again: string | null = null;
  let disposed = false;

  const digestOf = async (file: string): Promise<string | null> => {
    try {
      return createHash('sha256').update(await readFile(file)).digest('hex');
    } catch {
      return null; // gone for a moment (replaced by rename): the next poll sees the new one
    }
  };

  const run = (why: string): Promise<void> => {
    if (running) {
      again = why;
      return running;
    }
    running = (async () => {
      let next: string | null = why;
      while (next !== null && !disposed) {
        again = null;
        // What this reload reads becomes the baseline for the watcher.
        await Promise.all(options.files.map(async (file) => digests.set(file, await digestOf(file))));
        await options.reload(next);
        next = again;
      }
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const onSighup = (): void => void run('SIGHUP');
  const listeners = new Map<string, (current: Stats, previous: Stats) => void>();
  for (const file of options.files) {
    // Read now, synchronously: a change made right after start must differ from the baseline.
    digests.set(file, digestOfNow(file));
    const listener = (current: Stats, previous: Stats): void => {
      if (current.mtimeMs === previous.mtimeMs && current.size === previous.size && current.ino === previous.ino) return;
      void digestOf(file).then((digest) => {
        if (disposed || digest === null || digest === digests.get(file)) return;
        digests.set(file, digest);
        void run(`${file} changed`);
      });
    };
    listeners.set(file, listener);
    watchFile(file, { interval: intervalMs, persistent: false }, listener);
  }
  if (options.sighup !== false) process.on('SIGHUP', onSighup);

  return {
    reloadNow: run,
    dispose(): void {
      disposed = true;
      process.off('SIGHUP', onSighup);
      for (const [file, listener] of listeners) unwatchFile(file, listener);
    },
  };
}
