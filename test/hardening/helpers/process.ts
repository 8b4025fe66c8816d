/**
 * The built CLI as child processes, for the hardening suite: every process is
 * killed after its test, every wait is bounded and fails with the output of
 * the process it waited on. Logs are JSON lines on stderr (`--log-format json`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach } from 'vitest';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(repoRoot, 'bin', 'muxtun.js');

/** Heartbeat flags small enough that a dead peer is noticed within about a second. */
export const FAST_HEARTBEAT = ['--heartbeat-interval', '0.25', '--heartbeat-tolerance', '1.5'];

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const running = new Set<CliProcess>();
afterEach(async () => {
  await Promise.all([...running].map((p) => p.destroy()));
});

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh temp directory, removed after the file's tests. */
export async function tempDir(prefix = 'muxtun-hard-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Waits for `check` to return a value other than undefined/false, polling; fails naming `what`. */
export async function waitUntil<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Rejects after `ms` with a message naming what did not happen. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** One `muxtun` child process with its output kept line by line. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: string[] = [];
  /** Every stderr line as written. */
  readonly stderr: string[] = [];
  /** The stderr lines that parsed as JSON log entries. */
  readonly logs: LogLine[] = [];
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  readonly #waiters = new Set<() => void>();

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    const base = { ...process.env };
    delete base.MUXTUN_TOKEN;
    delete base.MUXTUN_SERVER;
    this.child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid ?? -1;
    running.add(this);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.stdout.push(line);
      this.#wake();
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderr.push(line);
      if (line.startsWith('{')) {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line
        }
      }
      this.#wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        running.delete(this);
        resolve(this.exit);
        this.#wake();
      });
      this.child.on('error', (error) => {
        this.stderr.push(`spawn error: ${error.message}`);
        this.exit = { code: null, signal: null };
        running.delete(this);
        resolve(this.exit);
        this.#wake();
      });
    });
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /** The number of log lines so far: pass it as `after` to wait only for newer ones. */
  mark(): number {
    return this.logs.length;
  }

  /** Everything the process wrote, for failure messages. */
  output(): string {
    return [...this.stdout.map((l) => `  out| ${l}`), ...this.stderr.map((l) => `  err| ${l}`)].join('\n');
  }

  /**
   * Waits for a log line whose `msg` contains `msg` (a string) or that
   * `match` accepts, among lines from index `after` on. Fails if the process
   * exits first or after `timeoutMs`.
   */
  waitForLog(match: string | ((line: LogLine) => boolean), options: { after?: number; timeoutMs?: number } = {}): Promise<LogLine> {
    const accept = typeof match === 'string' ? (l: LogLine) => typeof l.msg === 'string' && l.msg.includes(match) : match;
    const what = typeof match === 'string' ? `log "${match}"` : `a log line matching ${match.toString()}`;
    return this.#wait(what, () => this.logs.slice(options.after ?? 0).find(accept), options.timeoutMs ?? 10_000);
  }

  /** Waits for a stdout line matching `pattern`; resolves with the match. */
  waitForStdout(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.#wait(`stdout ${pattern}`, () => {
      for (const line of this.stdout) {
        const m = pattern.exec(line);
        if (m) return m;
      }
      return undefined;
    }, timeoutMs);
  }

  /** Waits for the process to exit on its own. */
  async waitExit(timeoutMs = 10_000): Promise<Exit> {
    return within(this.exited, timeoutMs, `pid ${this.pid} to exit:\n${this.output()}`).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.output()}`);
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** Kills the process for good (a stopped one too) and waits for it. */
  async destroy(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    this.child.kill('SIGCONT');
    await within(this.exited, 5_000, `pid ${this.pid} to die after SIGKILL`);
  }

  #wait<T>(what: string, find: () => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = find();
        if (found !== undefined) return settle(() => resolve(found));
        if (this.exit) settle(() => reject(new Error(`pid ${this.pid} exited (${JSON.stringify(this.exit)}) before ${what}:\n${this.output()}`)));
      };
      const timer = setTimeout(() => settle(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from pid ${this.pid}:\n${this.output()}`))), timeoutMs);
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        fn();
      };
      this.#waiters.add(check);
      check();
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Resident set size of a process in bytes, from /proc. */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

export interface Serve {
  proc: CliProcess;
  port: number;
  fingerprint: string;
  token: string;
  stateDir: string;
  /** `host:port` to give to connect. */
  address: string;
}

/**
 * Starts `muxtun serve` on 127.0.0.1 (port 0 unless given) with its own state
 * dir, JSON logs at debug, and waits for its banner.
 */
export async function startServe(options: { args?: string[]; env?: NodeJS.ProcessEnv; port?: number; stateDir?: string; logLevel?: string } = {}): Promise<Serve> {
  const stateDir = options.stateDir ?? join(await tempDir(), 'state');
  const proc = new CliProcess(
    [
      'serve',
      '--host', '127.0.0.1',
      '--port', String(options.port ?? 0),
      '--state-dir', stateDir,
      '--log-format', 'json',
      '--log-level', options.logLevel ?? 'debug',
      ...(options.args ?? []),
    ],
    options.env,
  );
  const listening = await proc.waitForStdout(/^muxtun server listening on 127\.0\.0\.1:(\d+)$/, 15_000);
  const fingerprint = (await proc.waitForStdout(/^fingerprint: (sha256:[0-9a-f]{64})/))[1]!;
  const token = (await proc.waitForStdout(/^token:\s+(\S+)$/))[1]!;
  const port = Number(listening[1]);
  return { proc, port, fingerprint, token, stateDir, address: `127.0.0.1:${port}` };
}

export interface Connect {
  proc: CliProcess;
  /** Ports the -R forwards got on the server, in the order given. */
  remotePorts: number[];
}

/** The port at the end of a forward description such as "-R 0.0.0.0:40123 -> 127.0.0.1:7". */
export function boundPort(forward: unknown): number {
  const match = /^-[LR] \S*:(\d+) -> /.exec(String(forward));
  if (!match) throw new Error(`cannot read the bound port from ${JSON.stringify(forward)}`);
  return Number(match[1]);
}

/**
 * Starts `muxtun connect` to `serve` (token in MUXTUN_TOKEN, pinned by
 * fingerprint unless `trust` says otherwise), JSON logs at debug, fast
 * heartbeats. Waits for "connected" unless `wait` is false.
 */
export async function startConnect(
  serve: { address: string; token: string; fingerprint: string },
  forwards: string[],
  options: { args?: string[]; env?: NodeJS.ProcessEnv; trust?: string[]; wait?: boolean; logLevel?: string } = {},
): Promise<Connect> {
  const proc = new CliProcess(
    [
      'connect', serve.address,
      ...(options.trust ?? ['--fingerprint', serve.fingerprint]),
      '--log-format', 'json',
      '--log-level', options.logLevel ?? 'debug',
      ...FAST_HEARTBEAT,
      ...forwards,
      ...(options.args ?? []),
    ],
    { MUXTUN_TOKEN: serve.token, ...options.env },
  );
  const remotePorts: number[] = [];
  if (options.wait !== false) {
    await proc.waitForLog((l) => l.msg === 'connected', { timeoutMs: 15_000 });
    for (const line of proc.logs) if (line.msg === '-R listening on the server') remotePorts.push(boundPort(line.forward));
  }
  return { proc, remotePorts };
}
