/**
 * Real `muxtun` processes (`node bin/muxtun.js`, or the single executable):
 * serve and connect started and waited for until ready, with JSON logs on
 * stderr and everything killed with its scope (see scope.ts). Importing this
 * module checks that dist/ is built.
 */
import { join } from 'node:path';
import { assertBuilt, baseEnv, repoRoot, TestProcess, type Exit } from './process.js';
import { tempDir } from './fs.js';
import { currentScope, type Scope } from './scope.js';

assertBuilt();

export const muxtunBin = join(repoRoot, 'bin', 'muxtun.js');

/** Heartbeat flags small enough that a dead peer is noticed within about a second. */
export const FAST_HEARTBEAT = ['--heartbeat-interval', '0.25', '--heartbeat-tolerance', '1.5'];

export interface MuxtunOptions {
  /** Names the process in failure messages. */
  name?: string;
  /** Variables added to the environment. */
  env?: NodeJS.ProcessEnv;
  /** Start from {@link baseEnv} (default), or from nothing but `env`. */
  inheritEnv?: boolean;
  /** Another muxtun to run (the single executable); default `node bin/muxtun.js`. */
  executable?: string;
  cwd?: string;
  /** Killed when this scope closes; default the current test's. */
  scope?: Scope;
  /** 'pipe' to write to its stdin (`connect -W`); default 'ignore'. */
  stdin?: 'ignore' | 'pipe';
}

/** Starts `muxtun ...args` (see {@link MuxtunOptions}). */
export function spawnMuxtun(args: string[], options: MuxtunOptions = {}): TestProcess {
  const env = options.inheritEnv === false ? { ...options.env } : baseEnv(options.env);
  return new TestProcess({
    command: options.executable ?? process.execPath,
    args: options.executable ? args : [muxtunBin, ...args],
    env,
    name: options.name ?? `muxtun ${args[0] ?? ''}`.trim(),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.scope ? { scope: options.scope } : {}),
    ...(options.stdin ? { stdin: options.stdin } : {}),
  });
}

/** Runs muxtun to completion, for commands that exit by themselves. */
export async function runMuxtun(args: string[], options: MuxtunOptions & { timeoutMs?: number } = {}): Promise<{ exit: Exit; stdout: string; stderr: string; process: TestProcess }> {
  const child = spawnMuxtun(args, options);
  try {
    const exit = await child.waitForExit(options.timeoutMs);
    return { exit, stdout: child.stdout.join('\n'), stderr: child.stderr.join('\n'), process: child };
  } finally {
    await child.kill();
  }
}

/** What `muxtun serve` prints on stdout once it listens. */
export interface ServeBanner {
  port: number;
  fingerprint: string;
  token: string;
}

/** Waits for serve's banner on stdout: the "listening on" line, the fingerprint, the token and the connect line. */
export async function serveBanner(serve: TestProcess, timeoutMs = 15_000): Promise<ServeBanner> {
  const port = await serve.waitForStdout('the "listening on" line', (line) => /^muxtun server listening on .*:(\d+)$/.exec(line)?.[1], { timeoutMs });
  const fingerprint = await serve.waitForStdout('the fingerprint line', (line) => /^fingerprint: (sha256:[0-9a-f]{64})/.exec(line)?.[1]);
  const token = await serve.waitForStdout('the token line', (line) => /^token:\s+(\S+)$/.exec(line)?.[1]);
  // `node bin/muxtun.js connect …`, `muxtun connect …` or the binary's name: the command as the user runs it.
  await serve.waitForStdout('the connect line', (line) => (/^ +MUXTUN_TOKEN=\S+ .* connect /.test(line) ? true : undefined));
  return { port: Number(port), fingerprint, token };
}

/** A running `muxtun serve` and what it printed. */
export interface Serve extends ServeBanner {
  process: TestProcess;
  stateDir: string;
  /** `127.0.0.1:port`, to give to connect. */
  address: string;
  /** With `--ws-listen` among the args: the port of the WebSocket listener. */
  wsPort?: number;
}

export interface ServeOptions extends MuxtunOptions {
  /** Default: a new temp dir (a new identity). */
  stateDir?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Passed as MUXTUN_TOKEN; default: the one generated in the state dir. */
  token?: string;
  /** Default debug; '' leaves it to the flags in `args` (-v, -q). */
  logLevel?: string;
  /** Default json (the logs {@link TestProcess.waitForLog} reads). */
  logFormat?: 'json' | 'pretty';
  /** More flags, after the others (so they win). */
  args?: string[];
}

/** Starts `muxtun serve` on 127.0.0.1 and waits for its banner. */
export async function startServe(options: ServeOptions = {}): Promise<Serve> {
  const scope = options.scope ?? currentScope();
  const stateDir = options.stateDir ?? join(await tempDir('muxtun-serve-', scope), 'state');
  const args = [
    'serve',
    '--host', '127.0.0.1',
    '--port', String(options.port ?? 0),
    '--state-dir', stateDir,
    '--log-format', options.logFormat ?? 'json',
    ...(options.logLevel === '' ? [] : ['--log-level', options.logLevel ?? 'debug']),
    ...(options.args ?? []),
  ];
  const env = { ...(options.token === undefined ? {} : { MUXTUN_TOKEN: options.token }), ...options.env };
  const process = spawnMuxtun(args, { name: 'serve', ...options, env, scope });
  const banner = await serveBanner(process);
  const wsPort = args.includes('--ws-listen')
    ? Number(await process.waitForStdout('the WebSocket listener line', (line) => /^muxtun WebSocket listener on .*:(\d+)\//.exec(line)?.[1]))
    : undefined;
  return { process, ...banner, stateDir, address: `127.0.0.1:${banner.port}`, ...(wsPort !== undefined ? { wsPort } : {}) };
}

/** How connect trusts the server. */
export type Trust = { fingerprint: string } | { knownHosts: string } | { ca: string; servername?: string } | 'insecure';

export interface ConnectOptions extends MuxtunOptions {
  /** -L specs. */
  local?: string[];
  /** -R specs. */
  remote?: string[];
  /** -D specs ([bind:]port). */
  dynamic?: string[];
  /** Default: --fingerprint of the server. */
  trust?: Trust;
  /** The server's port, when it is not the one of the server given (a relay in between). */
  port?: number;
  /** The server argument as given (a `wss://` URL, say), instead of 127.0.0.1 and the port. */
  server?: string;
  /** Passed as MUXTUN_TOKEN; default the server's. */
  token?: string;
  /** Default debug; '' leaves it to the flags in `args` (-v, -q). */
  logLevel?: string;
  /** Adds {@link FAST_HEARTBEAT}. */
  fastHeartbeat?: boolean;
  /** More flags, after the others (so they win). */
  args?: string[];
  /** Wait for the "connected" log (default true). */
  wait?: boolean;
}

/** The command line of `muxtun connect` to 127.0.0.1 with JSON logs. */
export function connectArgs(server: { port: number; fingerprint: string }, options: ConnectOptions): string[] {
  const trust = options.trust ?? { fingerprint: server.fingerprint };
  return [
    'connect',
    options.server ?? `127.0.0.1:${options.port ?? server.port}`,
    ...(options.local ?? []).flatMap((spec) => ['-L', spec]),
    ...(options.remote ?? []).flatMap((spec) => ['-R', spec]),
    ...(options.dynamic ?? []).flatMap((spec) => ['-D', spec]),
    ...trustArgs(trust),
    '--log-format', 'json',
    ...(options.logLevel ? ['--log-level', options.logLevel] : []),
    ...(options.fastHeartbeat ? FAST_HEARTBEAT : []),
    ...(options.args ?? []),
  ];
}

function trustArgs(trust: Trust): string[] {
  if (trust === 'insecure') return ['--insecure'];
  if ('fingerprint' in trust) return ['--fingerprint', trust.fingerprint];
  if ('knownHosts' in trust) return ['--known-hosts', trust.knownHosts];
  return ['--ca', trust.ca, ...(trust.servername ? ['--servername', trust.servername] : [])];
}

/** A running `muxtun connect`. */
export interface Connect {
  process: TestProcess;
  /** The server-side ports of the -R forwards the server granted, in the order it answered. */
  remotePorts: number[];
}

/**
 * Starts `muxtun connect` with the token in MUXTUN_TOKEN and, unless `wait`
 * is false, waits until it is connected with every -R answered.
 */
export async function startConnect(server: { port: number; fingerprint: string; token: string }, options: ConnectOptions = {}): Promise<Connect> {
  const env = { MUXTUN_TOKEN: options.token ?? server.token, ...options.env };
  const process = spawnMuxtun(connectArgs(server, { logLevel: 'debug', ...options }), { name: 'connect', ...options, env });
  const remotePorts: number[] = [];
  if (options.wait !== false) {
    await process.waitForLog('connected', { timeoutMs: 15_000 });
    for (const entry of process.logs()) if (entry.msg === '-R listening on the server') remotePorts.push(boundPort(entry.forward));
  }
  return { process, remotePorts };
}

/** The server-side port of the -R forward to `target` ("127.0.0.1:PORT"), or a clear failure. */
export function remotePort(connect: Connect, target: string): number {
  for (const entry of connect.process.logs()) {
    if (entry.msg !== '-R listening on the server') continue;
    const match = /^-R \S+:(\d+) -> (\S+)$/.exec(String(entry.forward));
    if (match?.[2] === target) return Number(match[1]);
  }
  throw new Error(`no "-R listening on the server" log for ${target}\n${connect.process.tail()}`);
}

/** The port at the end of a forward description such as "-R 0.0.0.0:40123 -> 127.0.0.1:7". */
export function boundPort(forward: unknown): number {
  const match = /^-[LR] \S*:(\d+) -> /.exec(String(forward));
  if (!match) throw new Error(`cannot read the bound port from ${JSON.stringify(forward)}`);
  return Number(match[1]);
}
