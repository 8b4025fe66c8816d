import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const muxtunBin = join(repoRoot, 'bin', 'muxtun.js');
const builtMain = join(repoRoot, 'dist', 'cli', 'main.js');

/**
 * These tests run the built CLI, not the sources: without dist/ every test
 * would fail with a confusing module-not-found from a child process.
 */
export function assertBuilt(): void {
  if (!existsSync(builtMain)) {
    throw new Error(`test/e2e runs the built CLI, but ${builtMain} is missing: run \`npm run build\` first (\`npm test\` does).`);
  }
  // Only a warning: someone may be editing src/ while a build-then-test run is under way.
  const sources = join(repoRoot, 'src');
  const built = statSync(builtMain).mtimeMs;
  const newer = readdirSync(sources, { recursive: true, encoding: 'utf8' }).find((file) => file.endsWith('.ts') && statSync(join(sources, file)).mtimeMs > built);
  if (newer !== undefined) console.warn(`test/e2e: src/${newer} is newer than dist/; run \`npm run build\` if the tests should see that change.`);
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
  /** Only lines at or after this index count (see {@link MuxtunProcess.mark}). */
  after?: number;
  timeoutMs?: number;
}

const DEFAULT_WAIT_MS = 10_000;

/** Every child still running, so a file's afterAll can kill what a failed test left. */
const running = new Set<MuxtunProcess>();

/** The environment of the test runner without anything that would configure muxtun by accident. */
export function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MUXTUN_') && !/^npm_/i.test(key)) env[key] = value;
  }
  // A home of its own, so no default state dir or known_hosts of the user is ever touched.
  return { ...env, HOME: '/nonexistent-muxtun-e2e', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', ...extra };
}

/**
 * `node bin/muxtun.js ...` as a child process. Keeps every stdout and
 * stderr line so a test waits for the line that says something happened,
 * never for a fixed time; every wait is bounded and its failure shows
 * what the process said.
 */
export class MuxtunProcess {
  readonly name: string;
  readonly args: string[];
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  /** Settles when the process has exited and its output is read to the end. */
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.args = args;
    this.child = spawn(process.execPath, [muxtunBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this);
    const outputsDone = [this.child.stdout!, this.child.stderr!].map((stream) => {
      const lines = stream === this.child.stdout ? this.stdout : this.stderr;
      const reader = createInterface({ input: stream, crlfDelay: Infinity });
      reader.on('line', (line) => {
        lines.push(line);
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

  get exit(): Exit | undefined {
    return this.#exit;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The number of stderr lines so far: pass as `after` to wait only for what comes next. */
  mark(): number {
    return this.stderr.length;
  }

  /** stderr lines that are JSON log entries. */
  logs(after = 0): LogEntry[] {
    return this.stderr.slice(after).flatMap((line) => {
      const entry = parseLog(line);
      return entry ? [entry] : [];
    });
  }

  /** The last lines of stderr and stdout, for failure messages. */
  tail(lines = 25): string {
    const show = (title: string, all: string[]): string =>
      all.length === 0 ? `  (no ${title})` : `  ${title} (last ${Math.min(lines, all.length)} of ${all.length} lines):\n` + all.slice(-lines).map((l) => `    ${l}`).join('\n');
    return `${this.name} [pid ${this.pid}, muxtun ${this.args.join(' ')}]\n${show('stderr', this.stderr)}\n${show('stdout', this.stdout)}`;
  }

  /** Resolves with the first stdout line that `match` maps to a value. */
  waitForStdout<T>(what: string, match: (line: string) => T | undefined, options: WaitOptions = {}): Promise<T> {
    return this.#waitFor(what, this.stdout, match, options);
  }

  /** Resolves with the first stderr line that `match` maps to a value. */
  waitForStderr<T>(what: string, match: (line: string) => T | undefined, options: WaitOptions = {}): Promise<T> {
    return this.#waitFor(what, this.stderr, match, options);
  }

  /** Waits for a JSON log entry whose msg equals `msg` (or matches it) and that passes `where`. */
  waitForLog(msg: string | RegExp, options: WaitOptions & { where?: (entry: LogEntry) => boolean } = {}): Promise<LogEntry> {
    const matches = (entry: LogEntry): boolean =>
      (typeof msg === 'string' ? entry.msg === msg : msg.test(entry.msg)) && (options.where?.(entry) ?? true);
    return this.#waitFor(`log "${String(msg)}"`, this.stderr, (line) => {
      const entry = parseLog(line);
      return entry && matches(entry) ? entry : undefined;
    }, options);
  }

  /** Waits for the process to exit on its own. */
  async waitForExit(timeoutMs = DEFAULT_WAIT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${this.name} to exit\n${this.tail()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#exit === undefined) this.child.kill(signal);
  }

  /** SIGKILL unless it already exited; resolves once it has. */
  async kill(): Promise<Exit> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** SIGTERM, then SIGKILL if it does not exit within `graceMs`. */
  async stop(graceMs = 3_000): Promise<Exit> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #waitFor<T>(what: string, lines: string[], match: (line: string) => T | undefined, options: WaitOptions): Promise<T> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    let next = options.after ?? 0;
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        for (; next < lines.length; next++) {
          const found = match(lines[next]!);
          if (found !== undefined) return settle(() => resolve(found));
        }
        if (this.#exit !== undefined) {
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

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

export function parseLog(line: string): LogEntry | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value === 'object' && value !== null && typeof (value as LogEntry).msg === 'string') return value as LogEntry;
  } catch {
    // Not a log line.
  }
  return undefined;
}

/** Kills every child that is still running (a file's afterAll safety net). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill()));
}

/** Runs muxtun to completion, for commands that exit by themselves. */
export async function runMuxtun(args: string[], env: NodeJS.ProcessEnv = baseEnv(), timeoutMs = DEFAULT_WAIT_MS): Promise<{ exit: Exit; stdout: string; stderr: string; process: MuxtunProcess }> {
  const child = new MuxtunProcess(`muxtun ${args[0] ?? ''}`.trim(), args, env);
  try {
    const exit = await child.waitForExit(timeoutMs);
    return { exit, stdout: child.stdout.join('\n'), stderr: child.stderr.join('\n'), process: child };
  } finally {
    await child.kill();
  }
}
