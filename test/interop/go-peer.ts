/**
 * The Go reference peer for the interop suite: finds Go and the Debian muxado
 * sources, builds `peer/main.go` once per test run into `bin/muxado-peer`, and
 * spawns it in its modes (see the header of peer/main.go for what each does).
 *
 * Policy: with MUXTUN_INTEROP=required a missing Go or muxado package is a test
 * failure (CI installs both); without it the suite is skipped with the reason
 * printed, so a laptop without Go still runs everything else.
 *
 * Environment:
 *   MUXTUN_INTEROP=required   fail instead of skip when the reference is missing
 *   MUXTUN_GO                 the go binary (default: `go` on PATH)
 *   MUXTUN_MUXADO_GOPATH      GOPATH that holds the muxado sources (default /usr/share/gocode)
 *   GOCACHE                   respected; otherwise a directory under os.tmpdir()
 */
import { spawnSync, execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestProcess, type Exit } from '../support/process.js';

/** Stream types peer/main.go's server gives a meaning to (any other type is echoed). */
export const StreamTypes = {
  /** Control: send "<streams> <bytes>\n"; the Go server opens that many streams back and replies with a JSON result. */
  CONTROL: 7,
  /** The Go server Close()s the stream at once without reading it. */
  CLOSE: 8,
} as const;

const here = path.dirname(fileURLToPath(import.meta.url));
const peerSource = path.join(here, 'peer');
export const peerBinary = path.join(here, 'bin', 'muxado-peer');

const goBin = process.env.MUXTUN_GO || 'go';
const goPath = process.env.MUXTUN_MUXADO_GOPATH || '/usr/share/gocode';
const muxadoDir = path.join(goPath, 'src', 'github.com', 'inconshreveable', 'muxado');

const BUILD_TIMEOUT_MS = 180_000;

export interface GoReference {
  /** Go and the muxado sources are both there. */
  available: boolean;
  /** MUXTUN_INTEROP=required: unavailability is a failure, not a skip. */
  required: boolean;
  /** `go version` output when Go was found. */
  goVersion?: string;
  /** Why it is unavailable (or what was found), for the skip notice or failure message. */
  reason: string;
}

let cachedReference: GoReference | undefined;

/** Looks for Go and the muxado package; cheap and synchronous, so describe.skipIf can use it. */
export function goReference(): GoReference {
  if (cachedReference) return cachedReference;
  const required = process.env.MUXTUN_INTEROP === 'required';
  const probe = spawnSync(goBin, ['version'], { encoding: 'utf8', timeout: 15_000 });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : `exit ${probe.status}: ${probe.stderr.trim()}`;
    cachedReference = {
      available: false,
      required,
      reason: `go not found (ran "${goBin} version": ${why}); install golang-go or set MUXTUN_GO`,
    };
  } else if (!existsSync(path.join(muxadoDir, 'session.go')) && !existsSync(path.join(muxadoDir, 'client.go'))) {
    cachedReference = {
      available: false,
      required,
      goVersion: probe.stdout.trim(),
      reason: `muxado sources not found in ${muxadoDir}; install golang-github-inconshreveable-muxado-dev or set MUXTUN_MUXADO_GOPATH`,
    };
  } else {
    cachedReference = {
      available: true,
      required,
      goVersion: probe.stdout.trim(),
      reason: `${probe.stdout.trim()}, muxado from ${muxadoDir}`,
    };
  }
  return cachedReference;
}

/** Newest modification time among the .go files under dir (recursively). */
function newestGoSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestGoSource(full));
    else if (entry.name.endsWith('.go')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** The binary exists and is newer than our source, the muxado sources and the go toolchain. */
function peerIsFresh(): boolean {
  if (!existsSync(peerBinary)) return false;
  const built = statSync(peerBinary).mtimeMs;
  // A new toolchain (its VERSION file) also means a rebuild; unknown means always rebuild.
  const goRoot = spawnSync(goBin, ['env', 'GOROOT'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const version = path.join(goRoot, 'VERSION');
  const toolchain = goRoot && existsSync(version) ? statSync(version).mtimeMs : Infinity;
  return built > Math.max(newestGoSource(peerSource), newestGoSource(muxadoDir), toolchain);
}

let building: Promise<string> | undefined;

/**
 * Builds the peer once per test run. Test files run in separate worker
 * processes, so a binary newer than every input is reused rather than rebuilt;
 * the build writes a temporary file and renames it, so concurrent builds are safe.
 */
export function buildPeer(): Promise<string> {
  building ??= new Promise<string>((resolve, reject) => {
    const ref = goReference();
    if (!ref.available) {
      reject(new Error(`cannot build the Go peer: ${ref.reason}`));
      return;
    }
    if (peerIsFresh()) {
      resolve(peerBinary);
      return;
    }
    mkdirSync(path.dirname(peerBinary), { recursive: true });
    const tmp = `${peerBinary}.${process.pid}.tmp`;
    const env = {
      ...process.env,
      GOPATH: goPath,
      GO111MODULE: 'off',
      // A user's GOFLAGS (e.g. -mod=mod) means nothing in GOPATH mode and could break the build.
      GOFLAGS: '',
      GOCACHE: process.env.GOCACHE || path.join(tmpdir(), 'muxtun-interop-gocache'),
    };
    execFile(
      goBin,
      ['build', '-o', tmp, '.'],
      { cwd: peerSource, env, timeout: BUILD_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, _stdout, stderr) => {
        if (error) {
          rmSync(tmp, { force: true });
          const timedOut = error.killed ? ` (killed after ${BUILD_TIMEOUT_MS} ms)` : '';
          reject(new Error(`building the Go peer failed${timedOut}: ${error.message}\n${stderr}`));
          return;
        }
        renameSync(tmp, peerBinary);
        resolve(peerBinary);
      },
    );
  });
  return building;
}

/** One JSON line the peer printed on stdout (stream-end, session-end, a client result...). */
export type PeerEvent = Record<string, unknown> & { event?: string };

/**
 * Starts the peer binary. Its stdin stays a pipe: the peer exits when it
 * reaches EOF, which is how stop() ends it, and how it ends by itself if this
 * process dies, so no peer outlives the test run.
 */
function startPeer(args: string[]): TestProcess {
  return new TestProcess({ command: peerBinary, args, env: { ...process.env }, stdin: 'pipe', stopBy: 'stdin', name: `Go peer (${args.join(' ')})` });
}

/** The JSON events a peer printed so far. */
export function peerEvents(peer: TestProcess): PeerEvent[] {
  return peer.json('stdout');
}

/** Waits for a JSON event of the peer that satisfies `match`. */
export function waitForEvent(peer: TestProcess, what: string, match: (e: PeerEvent) => boolean, timeoutMs = 15_000): Promise<PeerEvent> {
  return peer.waitFor(what, () => peerEvents(peer).find(match), timeoutMs);
}

/** A Go muxado.Server listening on 127.0.0.1 (echo, plus stream types 7 and 8). */
export interface GoServer {
  port: number;
  process: TestProcess;
  stop(): Promise<Exit>;
}

export async function startGoServer(): Promise<GoServer> {
  await buildPeer();
  const proc = startPeer(['server', '-listen', '127.0.0.1:0']);
  try {
    const port = await proc.waitForStdout('LISTENING <port>', (line) => /^LISTENING (\d+)$/.exec(line)?.[1], { timeoutMs: 15_000 });
    return { port: Number(port), process: proc, stop: () => proc.stop(2_000) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** What the `client` subcommand prints on success (and on stderr on failure). */
export interface ClientResult {
  ok: boolean;
  error?: string;
  streams: number;
  bytes: number;
  idleMs: number;
  ms: number;
  mbps: number;
  results: { id: number; sha256: string }[];
  failures?: string[];
}

export interface GoClientOptions {
  streams: number;
  bytes: number;
  /** Milliseconds of silence (heartbeats only) before opening streams. */
  idleMs?: number;
  /** Stream type in each SYN. */
  type?: number;
  /** Kill the client and fail after this long. */
  timeoutMs?: number;
}

export interface GoClientRun {
  exit: Exit;
  result?: ClientResult;
  process: TestProcess;
}

/**
 * Runs `client` against 127.0.0.1:port to completion. Never rejects on a
 * failing client: the caller asserts on `exit` and `result` (and shows
 * `process.tail()` in the message).
 */
export async function runGoClient(port: number, options: GoClientOptions): Promise<GoClientRun> {
  await buildPeer();
  const args = ['client', '-connect', `127.0.0.1:${port}`, '-streams', String(options.streams), '-bytes', String(options.bytes)];
  if (options.idleMs) args.push('-idle', `${options.idleMs}ms`);
  if (options.type !== undefined) args.push('-type', String(options.type));
  const proc = startPeer(args);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const timer = setTimeout(() => {
    proc.stderr.push(`(killed by go-peer.ts after ${timeoutMs} ms)`);
    proc.signal('SIGKILL');
  }, timeoutMs);
  const exit = await proc.exited;
  clearTimeout(timer);
  const result = peerEvents(proc).find((e) => typeof e.ok === 'boolean') as ClientResult | undefined;
  return { exit, result, process: proc };
}

/** Starts `echo-client`: a Go muxado.Client that echoes every stream our server opens. */
export async function startGoEchoClient(port: number): Promise<TestProcess> {
  await buildPeer();
  return startPeer(['echo-client', '-connect', `127.0.0.1:${port}`]);
}

/**
 * For `describe.skipIf(skipInterop())`: true only when the reference is
 * missing and MUXTUN_INTEROP is not "required"; prints why.
 */
export function skipInterop(): boolean {
  const ref = goReference();
  if (ref.available || ref.required) return false;
  console.warn(`interop skipped: ${ref.reason} (set MUXTUN_INTEROP=required to make this a failure)`);
  return true;
}

/** For beforeAll: throws the reason when the reference is missing (only reached when it is required). */
export function requireGoReference(): GoReference {
  const ref = goReference();
  if (!ref.available) {
    throw new Error(`MUXTUN_INTEROP=required but the Go reference peer is unavailable: ${ref.reason}`);
  }
  return ref;
}
