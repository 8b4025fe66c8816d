/**
 * Child processes under test. One class for all of them (muxtun, the single
 * executable, the Go reference peer, load generators, example scripts): it
 * keeps every stdout and stderr line so a test waits for the line that says
 * something happened, never for a fixed time; every wait is bounded and its
 * failure shows the tail of what the process said; and it is killed when the
 * test that started it ends (see scope.ts), or at the latest after the file.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { currentScope, type Scope } from './scope.js';
import { within } from './wait.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const builtMain = join(repoRoot, 'dist', 'cli', 'main.js');

/**
 * Tests that run the built CLI need dist/: without it every test would fail
 * with a confusing module-not-found from a child process.
 */
export function assertBuilt(): void {
  if (!existsSync(builtMain)) {
    throw new Error(`these tests run the built CLI, but ${builtMain} is missing: run \`npm run build\` first (\`npm test\` does).`);
  }
  // Only a warning: someone may be editing src/ while a build-then-test run is under way.
  const sources = join(repoRoot, 'src');
  const built = statSync(builtMain).mtimeMs;
  const newer = readdirSync(sources, { recursive: true, encoding: 'utf8' }).find((file) => file.endsWith('.ts') && statSync(join(sources, file)).mtimeMs > built);
  if (newer !== undefined) console.warn(`src/${newer} is newer than dist/; run \`npm run build\` if the tests should see that change.`);
}

/**
 * The environment without what `npm test` exports to its children
 * (npm_config_prefix, npm_config_local_prefix, npm_package_*, …), which would
 * point an inner npm back at this repository; npm's own config files still apply.
 */
export function cleanEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_cafile']);
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || keep.has(key.toLowerCase())));
}

/** The environment of the test runner without anything that would configure muxtun (or npm) by accident. */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MUXTUN_') && !/^npm_/i.test(key)) env[key] = value;
  }
  // A home of its own, so no default state dir or known_hosts of the user is ever touched.
  return { ...env, HOME: '/nonexistent-muxtun-test', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', ...extra };
}

/** One pino JSON log line. */
export interface LogEntry {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export const LogLevel = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WaitOptions {
  /** Only lines at or after this index of the stream waited on count (see {@link TestProcess.mark}). */
  after?: number;
  timeoutMs?: number;
}

export interface SpawnSpec {
  command: string;
  args?: string[];
  /** The whole environment of the child; default {@link baseEnv}(). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Names the process in failure messages; default the command's file name. */
  name?: string;
  /** 'pipe' for a child that reads its stdin; default 'ignore'. */
  stdin?: 'ignore' | 'pipe';
  /** An IPC channel (`child.send`, 'message'), for a Node child. */
  ipc?: boolean;
  /** How {@link TestProcess.stop} asks it to end before SIGKILL: SIGTERM (default), or EOF on its stdin. */
  stopBy?: 'SIGTERM' | 'stdin';
  /** Killed when this scope closes; default the current test's (see scope.ts). */
  scope?: Scope;
}

type Stream = 'stdout' | 'stderr';
type Json = Record<string, unknown>;

const DEFAULT_WAIT_MS = 10_000;

/** Every child still running, so {@link killAll} can end what a failed test left. */
const running = new Set<TestProcess>();

export class TestProcess {
  readonly name: string;
  readonly command: string;
  readonly args: string[];
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  /** Settles when the process has exited and its stdout and stderr are read to the end. */
  readonly exited: Promise<Exit>;
  readonly #json: Record<Stream, Array<Json | undefined>> = { stdout: [], stderr: [] };
  readonly #stopBy: 'SIGTERM' | 'stdin';
  readonly #waiters = new Set<() => void>();
  #exit: Exit | undefined;

  constructor(spec: SpawnSpec) {
    this.command = spec.command;
    this.args = spec.args ?? [];
    this.name = spec.name ?? basename(spec.command);
    this.#stopBy = spec.stopBy ?? 'SIGTERM';
    const stdio: StdioOptions = [spec.stdin ?? 'ignore', 'pipe', 'pipe', ...(spec.ipc ? ['ipc' as const] : [])];
    this.child = spawn(spec.command, this.args, { env: spec.env ?? baseEnv(), stdio, ...(spec.cwd ? { cwd: spec.cwd } : {}) });
    this.child.stdin?.on('error', () => {});
    running.add(this);
    (spec.scope ?? currentScope()).add(() => this.kill(), 'process');

    const outputsDone = (['stdout', 'stderr'] as const).map((name) => {
      const stream = this.child[name]!;
      const reader = createInterface({ input: stream, crlfDelay: Infinity });
      reader.on('line', (line) => {
        this[name].push(line);
        this.#json[name].push(parseJson(line));
        this.#wake();
      });
      // 'close' of the stream too: a stream destroyed on purpose ends no readline.
      return new Promise<void>((resolve) => {
        reader.once('close', resolve);
        stream.once('close', resolve);
      });
    });
    const exitSeen = new Promise<Exit>((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', (error) => {
        this.stderr.push(`(spawn failed: ${error.message})`);
        this.#json.stderr.push(undefined);
        resolve({ code: null, signal: null });
      });
    });
    this.exited = Promise.all([exitSeen, ...outputsDone]).then(([exit]) => {
      this.#exit = exit;
      running.delete(this);
      this.#wake();
      return exit;
    });
  }

  /** How it exited, once it has (and its output is read); undefined while it runs. */
  get exit(): Exit | undefined {
    return this.#exit;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The number of lines of `stream` so far: pass as `after` to wait only for what comes next. */
  mark(stream: Stream = 'stderr'): number {
    return this[stream].length;
  }

  /** The lines of `stream` (from index `after`) that are JSON objects, parsed. */
  json(stream: Stream, after = 0): Json[] {
    return this.#json[stream].slice(after).filter((entry): entry is Json => entry !== undefined);
  }

  /** The stderr lines (from index `after`) that are pino log entries. */
  logs(after = 0): LogEntry[] {
    return this.json('stderr', after).filter(isLogEntry);
  }

  /** The last lines of stderr and stdout, for failure messages. */
  tail(lines = 25): string {
    const show = (title: string, all: string[]): string =>
      all.length === 0 ? `  (no ${title})` : `  ${title} (last ${Math.min(lines, all.length)} of ${all.length} lines):\n` + all.slice(-lines).map((l) => `    ${l}`).join('\n');
    return `${this.name} [pid ${this.pid}: ${this.command} ${this.args.join(' ')}]\n${show('stderr', this.stderr)}\n${show('stdout', this.stdout)}`;
  }

  /**
   * Resolves with what `find` returns once it is not undefined, asking again
   * after every line of output; fails if the process exits first or after
   * `timeoutMs`, or with what `find` throws.
   */
  waitFor<T>(what: string, find: () => T | undefined, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        let found: T | undefined;
        try {
          found = find();
        } catch (error) {
          settle(() => reject(error));
          return;
        }
        if (found !== undefined) settle(() => resolve(found));
        else if (this.#exit !== undefined) {
          settle(() => reject(new Error(`${this.name} exited (code ${this.#exit!.code}, signal ${this.#exit!.signal}) before ${what}\n${this.tail()}`)));
        }
      };
      const timer = setTimeout(() => settle(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.name}\n${this.tail()}`))), timeoutMs);
      const settle = (done: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        done();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves with the first stdout line's match of `pattern`, or with the first value `match` maps a line to. */
  waitForStdout(pattern: RegExp, options?: WaitOptions): Promise<RegExpExecArray>;
  waitForStdout<T>(what: string, match: (line: string) => T | undefined, options?: WaitOptions): Promise<T>;
  waitForStdout<T>(first: RegExp | string, second?: WaitOptions | ((line: string) => T | undefined), third?: WaitOptions): Promise<T | RegExpExecArray> {
    return this.#waitForLine('stdout', first, second, third);
  }

  /** {@link waitForStdout} for stderr. */
  waitForStderr(pattern: RegExp, options?: WaitOptions): Promise<RegExpExecArray>;
  waitForStderr<T>(what: string, match: (line: string) => T | undefined, options?: WaitOptions): Promise<T>;
  waitForStderr<T>(first: RegExp | string, second?: WaitOptions | ((line: string) => T | undefined), third?: WaitOptions): Promise<T | RegExpExecArray> {
    return this.#waitForLine('stderr', first, second, third);
  }

  /**
   * Waits for a JSON log entry on stderr whose msg equals `match` (a string)
   * or matches it (a RegExp), or that `match` accepts (a function), and that
   * passes `where`.
   */
  waitForLog(match: string | RegExp | ((entry: LogEntry) => boolean), options: WaitOptions & { where?: (entry: LogEntry) => boolean } = {}): Promise<LogEntry> {
    const accepts = typeof match === 'function' ? match : typeof match === 'string' ? (entry: LogEntry) => entry.msg === match : (entry: LogEntry) => match.test(entry.msg);
    const what = typeof match === 'function' ? `a log entry matching ${match.toString()}` : `log ${typeof match === 'string' ? `"${match}"` : String(match)}`;
    let next = options.after ?? 0;
    const entries = this.#json.stderr;
    return this.waitFor(what, () => {
      for (; next < entries.length; next++) {
        const entry = entries[next];
        if (isLogEntry(entry) && accepts(entry) && (options.where?.(entry) ?? true)) return entry;
      }
      return undefined;
    }, options.timeoutMs);
  }

  /** Waits for the process to exit on its own. */
  waitForExit(timeoutMs = DEFAULT_WAIT_MS): Promise<Exit> {
    return within(this.exited, timeoutMs, `${this.name} to exit`).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.tail()}`);
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGKILL (and SIGCONT, for one stopped with SIGSTOP) unless it already exited; resolves once it has. */
  async kill(): Promise<Exit> {
    this.signal('SIGKILL');
    this.signal('SIGCONT');
    return this.#exitWithin(10_000, 'after SIGKILL');
  }

  /** Asks it to end (SIGTERM, or EOF on stdin; see {@link SpawnSpec.stopBy}), then SIGKILL if it has not within `graceMs`. */
  async stop(graceMs = 3_000): Promise<Exit> {
    if (this.#stopBy === 'stdin') this.child.stdin?.end();
    else this.signal('SIGTERM');
    const timer = setTimeout(() => void this.kill().catch(() => undefined), graceMs);
    try {
      return await this.#exitWithin(graceMs + 10_000, 'after stop()');
    } finally {
      clearTimeout(timer);
    }
  }

  #exitWithin(ms: number, when: string): Promise<Exit> {
    return within(this.exited, ms, `${this.name} (pid ${this.pid}) to exit ${when}`).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.tail()}`);
    });
  }

  #waitForLine<T>(stream: Stream, first: RegExp | string, second: WaitOptions | ((line: string) => T | undefined) | undefined, third: WaitOptions | undefined): Promise<T | RegExpExecArray> {
    const [what, match, options]: [string, (line: string) => T | RegExpExecArray | undefined, WaitOptions] =
      typeof first === 'string'
        ? [first, typeof second === 'function' ? second : () => undefined, third ?? {}]
        : [`a ${stream} line matching ${String(first)}`, (line) => first.exec(line) ?? undefined, (typeof second === 'function' ? undefined : second) ?? {}];
    const lines = this[stream];
    let next = options.after ?? 0;
    return this.waitFor(`${what}`, () => {
      for (; next < lines.length; next++) {
        const found = match(lines[next]!);
        if (found !== undefined) return found;
      }
      return undefined;
    }, options.timeoutMs);
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

function parseJson(line: string): Json | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

function isLogEntry(entry: Json | undefined): entry is LogEntry {
  return entry !== undefined && typeof entry.msg === 'string' && typeof entry.level === 'number';
}

/** Kills every child that is still running (setup.ts does after each file). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill()));
}

/** Resident set size of a process in bytes, from /proc. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}
