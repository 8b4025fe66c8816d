/**
 * `--control FILE` and `--no-control` of serve and connect, and opening the
 * control socket a running one listens on (docs/control.md).
 *
 * Where: the path given; else one per process in the default directory
 * (`<dir>/<kind>-<pid>.sock`), which `muxtun status` finds by itself; none
 * for `connect -W` unless a path is given (its one connection is the whole
 * job, and ssh starts one per ProxyCommand).
 *
 * When it cannot be opened, what happens depends on who chose the path. The
 * default one: a warning, and the tunnel runs without it; the tunnel is the
 * job, and a service whose home has no writable state dir should not stop
 * over a convenience. A path the user gave (flag or config file): an error,
 * exit 1; scripts and `muxtun status --control` will look for it there, and
 * a tunnel quietly running without it would leave them failing later with
 * no hint why.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ControlServer, defaultControlDir, type ControlHandlers, type MuxtunKind } from '../control/index.js';
import type { TunnelLogger } from '../tunnel/index.js';
import { describeFailure } from '../util/errors.js';
import type { Origin, Settings } from './config/settings.js';
import type { Shown } from './config/check.js';

/** As commander gives them: a path, `false` after --no-control (or `control = false`), else undefined. */
export interface ControlFlags {
  control?: string | false;
}

/** Adds --control and --no-control. */
export function addControlOptions(command: Command, kind: MuxtunKind): Command {
  const skipped = kind === 'connect' ? '; none with -W unless given' : '';
  const commands = kind === 'connect' ? '`muxtun status` and `muxtun forward`' : '`muxtun status` and `muxtun session`';
  return command
    .option('--control <file>', `listen for ${commands} on this Unix socket (default: ${kind}-<pid>.sock in $XDG_RUNTIME_DIR/muxtun/ or the state dir's run/${skipped}; see docs/control.md)`)
    .option('--no-control', 'no control socket: `muxtun status` and friends cannot reach this process');
}

/** Where this process's control socket goes, and whether the user chose it; null for none. */
export type ControlPlan = { path: string; explicit: boolean } | null;

/** The plan for `flags`: --no-control, --control FILE, or the default (none for -W). */
export function planControl(flags: ControlFlags, kind: MuxtunKind, env: NodeJS.ProcessEnv, options: { stdio?: boolean } = {}): ControlPlan {
  if (flags.control === false) return null;
  if (typeof flags.control === 'string') return { path: resolve(flags.control), explicit: true };
  if (options.stdio === true) return null;
  return { path: join(defaultControlDir(env, homedir()), `${kind}-${process.pid}.sock`), explicit: false };
}

/** What --check shows for the control socket: the path given, or the default one with `<pid>` for the process to come. */
export function controlShown(flags: ControlFlags, settings: Settings, kind: MuxtunKind, env: NodeJS.ProcessEnv, options: { stdio?: boolean } = {}): Shown {
  const origin = settings.origin('control');
  if (flags.control === false) return { value: false, origin };
  if (typeof flags.control === 'string') return { value: resolve(flags.control), origin };
  const byDefault: Origin = { kind: 'other', where: options.stdio === true ? 'default with -W: none' : 'default: one per process, <pid> is its process id' };
  if (options.stdio === true) return { value: false, origin: byDefault };
  return { value: join(defaultControlDir(env, homedir()), `${kind}-<pid>.sock`), origin: byDefault };
}

/**
 * Opens the control socket of `plan` with `handlers` (see the header for
 * what a failure does). Null when there is none.
 *
 * @throws the ControlError (`ERR_MUXTUN_CONTROL_IN_USE`, `_SOCKET`) when a path the user gave cannot be used
 */
export async function openControl(plan: ControlPlan, kind: MuxtunKind, handlers: ControlHandlers, logger: TunnelLogger): Promise<ControlServer | null> {
  if (plan === null) return null;
  try {
    const control = await ControlServer.listen({
      path: plan.path,
      kind,
      handlers,
      onInternalError: (error, method) => logger.error({ method, error: describeFailure(error) }, 'a control request failed inside muxtun'),
    });
    logger.info({ path: plan.path }, 'control socket listening (muxtun status, forward, session)');
    return control;
  } catch (error) {
    if (plan.explicit) throw error;
    logger.warn(
      { path: plan.path, error: describeFailure(error) },
      'no control socket: `muxtun status` cannot reach this process; running without it (choose a path with --control FILE, or --no-control)',
    );
    return null;
  }
}
