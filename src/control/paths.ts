/**
 * Where control sockets live, and how the CLI finds the one to talk to.
 *
 * Directory: `$XDG_RUNTIME_DIR/muxtun/` when XDG_RUNTIME_DIR is set to an
 * absolute path (per-user, mode 0700, on tmpfs and emptied at logout: the
 * place the XDG spec gives to sockets), else `run/` in the default state
 * directory (`~/.local/state/muxtun/run/`), which is private to the user as
 * well. The fallback does not follow `--state-dir`, so `muxtun status`
 * finds a muxtun without being told where its state is.
 *
 * File name: `connect-<pid>.sock` or `serve-<pid>.sock`, so several muxtuns
 * of one user never collide, and a listing says what each one is.
 */
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { defaultStateDir } from '../state/state-dir.js';
import { errnoCode, errorMessage } from '../util/errors.js';
import type { Env } from '../util/xdg.js';
import { ControlError, ControlErrorCode } from './errors.js';
import { probeSocket } from './probe.js';
import type { MuxtunKind } from './results.js';

/** The directory muxtun's control sockets go in by default (see the module header). */
export function defaultControlDir(env: Env = process.env, home: string = homedir()): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== '' && isAbsolute(runtime)) return join(runtime, 'muxtun');
  return join(defaultStateDir(env, home), 'run');
}

/** The default socket path of a muxtun: `<dir>/<kind>-<pid>.sock`. */
export function defaultControlPath(kind: MuxtunKind, pid: number = process.pid, env: Env = process.env, home: string = homedir()): string {
  return join(defaultControlDir(env, home), `${kind}-${pid}.sock`);
}

/** A control socket found in a directory, named by the muxtun that made it. */
export interface ControlEndpoint {
  path: string;
  kind: MuxtunKind;
  pid: number;
}

const SOCKET_NAME = /^(connect|serve)-([1-9]\d{0,9})\.sock$/;

/**
 * The control sockets in `dir` that something listens on, by kind and pid.
 * Dead ones (left by a muxtun that was killed) and files of other names are
 * skipped. A missing directory has none.
 *
 * @throws {@link ControlError} `ERR_MUXTUN_CONTROL_DISCOVERY` when the directory cannot be read
 */
export async function listControlSockets(dir: string): Promise<ControlEndpoint[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw new ControlError(ControlErrorCode.DISCOVERY, `cannot list the control directory ${dir}: ${errorMessage(error)} (use --control PATH)`, { cause: error });
  }
  const candidates: ControlEndpoint[] = [];
  for (const name of names.sort()) {
    const match = SOCKET_NAME.exec(name);
    if (match !== null) candidates.push({ path: join(dir, name), kind: match[1] as MuxtunKind, pid: Number(match[2]) });
  }
  const probes = await Promise.all(candidates.map((candidate) => probeSocket(candidate.path)));
  return candidates.filter((_, index) => probes[index]!.state === 'live');
}

/**
 * The one running muxtun to talk to, when none was named with --control:
 * the single live socket in `dir` (of `kind`, when given).
 *
 * @throws {@link ControlError} `ERR_MUXTUN_CONTROL_DISCOVERY` when there is
 *   none, or more than one (the message lists them and asks for --control)
 */
export async function findControlSocket(options: { dir?: string; kind?: MuxtunKind } = {}): Promise<ControlEndpoint> {
  const dir = options.dir ?? defaultControlDir();
  const live = await listControlSockets(dir);
  const wanted = options.kind === undefined ? live : live.filter((endpoint) => endpoint.kind === options.kind);
  const what = options.kind === undefined ? 'muxtun' : `muxtun ${options.kind}`;
  if (wanted.length === 1) return wanted[0]!;
  if (wanted.length === 0) {
    const others = live.length === 0 ? '' : ` (only ${live.map(describeEndpoint).join(', ')})`;
    throw new ControlError(ControlErrorCode.DISCOVERY, `no running ${what} found in ${dir}${others} (use --control PATH)`);
  }
  throw new ControlError(
    ControlErrorCode.DISCOVERY,
    `${wanted.length} running ${what}s found in ${dir}; choose one with --control PATH:\n${wanted.map((endpoint) => `  ${endpoint.path}  (${describeEndpoint(endpoint)})`).join('\n')}`,
  );
}

function describeEndpoint(endpoint: ControlEndpoint): string {
  return `${endpoint.kind} pid ${endpoint.pid}`;
}
