// The single executable (scripts/build-binary.js) needs nothing beside itself:
// it is copied alone into an empty folder and run from another empty folder,
// with a PATH that has no node, no NODE_* variables, and a HOME of its own.
// Real serve and connect processes carry -L and -R echo traffic.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundPort, echoServer, freePort, LineProcess, repoRoot, roundTrip, servePort } from './helpers.js';

const run = promisify(execFile);
const supported = process.platform === 'linux';
const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

describe.runIf(supported)('single executable (dist/muxtun-linux-x64)', () => {
  let temp: string;
  let binary: string;
  let cwd: string;
  let env: NodeJS.ProcessEnv;
  const processes: LineProcess[] = [];
  const servers: net.Server[] = [];

  beforeAll(async () => {
    // Rebuilds only when dist/ or the script changed since the last build (`npm test` rebuilds dist/ first).
    await run(process.execPath, [join(repoRoot, 'scripts', 'build-binary.js'), '--if-stale'], { cwd: repoRoot, timeout: 120_000 });
    temp = await mkdtemp(join(tmpdir(), 'muxtun-binary-'));
    await mkdir(join(temp, 'bin'));
    await mkdir(join(temp, 'cwd'));
    await mkdir(join(temp, 'home'));
    binary = join(temp, 'bin', 'muxtun');
    await copyFile(join(repoRoot, 'dist', `muxtun-${process.platform}-${process.arch}`), binary);
    cwd = join(temp, 'cwd');
    // Nothing inherited: no node on PATH, no NODE_OPTIONS/NODE_PATH, no npm_* variables.
    env = { PATH: '/nonexistent', HOME: join(temp, 'home') };
  }, 150_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): LineProcess => {
    const started = new LineProcess(binary, args, { cwd, env: { ...env, ...extraEnv } });
    processes.push(started);
    return started;
  };

  it('prints the package version', async () => {
    const { stdout } = await run(binary, ['--version'], { cwd, env });
    expect(stdout.trim()).toBe(version);
  });

  it('prints help when run with --help', async () => {
    const { stdout } = await run(binary, ['--help'], { cwd, env });
    expect(stdout).toContain('Usage: muxtun [options] [command]');
    expect(stdout).toMatch(/^ +serve\b/m);
    expect(stdout).toMatch(/^ +connect\b/m);
  });

  it('carries -L and -R echo traffic between a real serve and connect', async () => {
    const echoL = await echoServer();
    const echoR = await echoServer();
    servers.push(echoL.server, echoR.server);

    // -L and -R refuse port 0, so take ports that were free a moment ago.
    const [listenL, listenR] = [await freePort(), await freePort()];
    // serve logs through pino-pretty, connect through pino.destination: both loggers must survive bundling.
    const serve = start(['serve', '--host', '127.0.0.1', '--port', '0', '--state-dir', join(temp, 'state'), '--log-format', 'pretty']);
    const port = await serve.waitFor('the listening line on stdout', servePort);
    const fingerprint = await serve.waitFor('the fingerprint on stdout', (line) => /^fingerprint: (sha256:[0-9a-f]{64})/.exec(line)?.[1]);
    const token = await serve.waitFor('the token on stdout', (line) => /^token:\s+(\S+)$/.exec(line)?.[1]);
    await serve.waitFor('a pretty "listening" log line', (line) => (/\] INFO: listening$/.test(line) ? true : undefined));

    const connect = start(
      [
        'connect', `127.0.0.1:${port}`, '--fingerprint', fingerprint, '--log-format', 'json',
        '-L', `127.0.0.1:${listenL}:127.0.0.1:${echoL.port}`,
        '-R', `127.0.0.1:${listenR}:127.0.0.1:${echoR.port}`,
      ],
      { MUXTUN_TOKEN: token },
    );
    const localPort = boundPort((await connect.waitForLog('-L listening')).forward);
    const remotePort = boundPort((await connect.waitForLog('-R listening on the server')).forward);
    await connect.waitForLog('connected');

    const payloadL = randomBytes(256 * 1024);
    expect((await roundTrip(localPort, payloadL)).equals(payloadL)).toBe(true);
    const payloadR = randomBytes(256 * 1024);
    expect((await roundTrip(remotePort, payloadR)).equals(payloadR)).toBe(true);

    await connect.kill();
    await serve.kill();
    // SIGTERM is a clean stop (exit 0), not a crash or the SIGKILL fallback.
    expect(connect.child.exitCode).toBe(0);
    expect(serve.child.exitCode).toBe(0);
  });
});
