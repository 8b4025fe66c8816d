import { basename, isAbsolute, relative } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** What a command needs from the process, so tests can run commands in-process too. */
export interface CommandContext {
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  /** What `connect -W` forwards (default: process.stdin). */
  stdin?: Readable;
  /** How the user runs muxtun, for commands printed to copy (default: from process.argv). */
  invocation?: string;
}

/** A pending first SIGINT/SIGTERM; `dispose()` removes the handlers (a command that ended without one). */
export interface ShutdownSignal {
  readonly received: Promise<NodeJS.Signals>;
  dispose(): void;
}

/**
 * Resolves with the first SIGINT or SIGTERM. A second one exits at once,
 * saying so: the user asked twice and must not wait for the drain.
 */
export function onShutdownSignal(stderr: Writable): ShutdownSignal {
  let dispose = (): void => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    const handler = (signal: NodeJS.Signals): void => {
      dispose();
      const now = (second: NodeJS.Signals): void => {
        stderr.write(`muxtun: ${second} again: stopping now without waiting for open connections\n`);
        process.exit(second === 'SIGINT' ? 130 : 143);
      };
      process.once('SIGINT', now);
      process.once('SIGTERM', now);
      resolve(signal);
    };
    dispose = () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
  return { received, dispose: () => dispose() };
}

/**
 * The command a user types to run this muxtun, as the README teaches it:
 * `node bin/muxtun.js` from a checkout, `muxtun` once installed, the
 * binary's own name for the single executable.
 */
export function invocation(argv: readonly string[] = process.argv, cwd = process.cwd()): string {
  const script = argv[1] ?? 'muxtun';
  if (basename(script) !== 'muxtun.js') return basename(script);
  const shown = isAbsolute(script) ? relative(cwd, script) : script;
  return `node ${shown.startsWith('..') ? script : shown}`;
}
