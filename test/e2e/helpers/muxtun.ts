import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'vitest';
import type { TestServer } from './net.js';
import { baseEnv, MuxtunProcess } from './process.js';

/**
 * Everything one test starts (processes, servers, temp dirs), torn down
 * when the test finishes however it ends: processes get SIGKILL, so no
 * test leaves one behind.
 */
export class Scope {
  readonly #processes: MuxtunProcess[] = [];
  readonly #servers: TestServer[] = [];
  readonly #dirs: string[] = [];

  constructor(context: Pick<TestContext, 'onTestFinished'>) {
    context.onTestFinished(() => this.close());
  }

  async tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'muxtun-e2e-'));
    this.#dirs.push(dir);
    return dir;
  }

  /** Registers a test server to close at the end. */
  async server<T extends TestServer>(started: Promise<T>): Promise<T> {
    const server = await started;
    this.#servers.push(server);
    return server;
  }

  spawn(name: string, args: string[], env: NodeJS.ProcessEnv): MuxtunProcess {
    const child = new MuxtunProcess(name, args, env);
    this.#processes.push(child);
    return child;
  }

  async close(): Promise<void> {
    await Promise.all(this.#processes.map((p) => p.kill()));
    await Promise.all(this.#servers.map((s) => s.close()));
    await Promise.all(this.#dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** A running `muxtun serve` and what it printed. */
export interface Serve {
  process: MuxtunProcess;
  port: number;
  fingerprint: string;
  token: string;
  stateDir: string;
}

export interface ServeOptions {
  /** Default: a new temp dir (a new identity). */
  stateDir?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Passed as MUXTUN_TOKEN; default: the one generated in the state dir. */
  token?: string;
  args?: string[];
  name?: string;
}

/** Starts `muxtun serve` on 127.0.0.1 and waits for its banner on stdout. */
export async function startServe(scope: Scope, options: ServeOptions = {}): Promise<Serve> {
  const stateDir = options.stateDir ?? join(await scope.tempDir(), 'state');
  const args = [
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port ?? 0),
    '--state-dir',
    stateDir,
    '--log-format',
    'json',
    ...(options.args ?? []),
  ];
  const env = baseEnv(options.token === undefined ? {} : { MUXTUN_TOKEN: options.token });
  const process = scope.spawn(options.name ?? 'serve', args, env);
  const port = await process.waitForStdout('the "listening on" line', (line) => /^muxtun server listening on .*:(\d+)$/.exec(line)?.[1], { timeoutMs: 15_000 });
  const fingerprint = await process.waitForStdout('the fingerprint line', (line) => /^fingerprint: (sha256:[0-9a-f]{64})/.exec(line)?.[1]);
  const token = await process.waitForStdout('the token line', (line) => /^token:\s+(\S+)$/.exec(line)?.[1]);
  await process.waitForStdout('the connect line', (line) => (/ connect /.test(line) ? true : undefined));
  return { process, port: Number(port), fingerprint, token, stateDir };
}

/** A running `muxtun connect`. */
export interface Connect {
  process: MuxtunProcess;
  /** Server-side ports of the -R forwards, in the order the server answered, keyed by "host:port" target. */
  remotePorts: Map<string, number>;
}

export interface ConnectOptions {
  local?: string[];
  remote?: string[];
  /** Default: --fingerprint of the server. */
  trust?: { fingerprint: string } | { knownHosts: string } | 'insecure';
  /** Default: the server's token. */
  token?: string;
  args?: string[];
  name?: string;
  /** Wait for the "connected" log (default true). */
  waitConnected?: boolean;
  /** The server's port, when there is no {@link Serve}. */
  port?: number;
}

export function connectArgs(server: Pick<Serve, 'port' | 'fingerprint'>, options: ConnectOptions): string[] {
  const trust = options.trust ?? { fingerprint: server.fingerprint };
  return [
    'connect',
    `127.0.0.1:${options.port ?? server.port}`,
    ...(options.local ?? []).flatMap((spec) => ['-L', spec]),
    ...(options.remote ?? []).flatMap((spec) => ['-R', spec]),
    ...(trust === 'insecure' ? ['--insecure'] : 'fingerprint' in trust ? ['--fingerprint', trust.fingerprint] : ['--known-hosts', trust.knownHosts]),
    '--log-format',
    'json',
    ...(options.args ?? []),
  ];
}

/** Starts `muxtun connect` with the token in MUXTUN_TOKEN and waits until it is connected with every -R answered. */
export async function startConnect(scope: Scope, server: Pick<Serve, 'port' | 'fingerprint' | 'token'>, options: ConnectOptions = {}): Promise<Connect> {
  const process = scope.spawn(options.name ?? 'connect', connectArgs(server, options), baseEnv({ MUXTUN_TOKEN: options.token ?? server.token }));
  const remotePorts = new Map<string, number>();
  if (options.waitConnected !== false) {
    await process.waitForLog('connected', { timeoutMs: 15_000 });
    for (const entry of process.logs()) {
      if (entry.msg !== '-R listening on the server') continue;
      const match = /^-R \S+:(\d+) -> (\S+)$/.exec(String(entry.forward));
      if (match) remotePorts.set(match[2]!, Number(match[1]));
    }
  }
  return { process, remotePorts };
}

/** The server-side port of the -R forward to `target` ("127.0.0.1:PORT"), or a clear failure. */
export function remotePort(connect: Connect, target: string): number {
  const port = connect.remotePorts.get(target);
  if (port === undefined) throw new Error(`no "-R listening on the server" log for ${target}\n${connect.process.tail()}`);
  return port;
}
