// The single executable (scripts/build-binary.js) needs nothing beside itself:
// it is copied alone into an empty folder and run from another empty folder,
// with a PATH that has no node, no NODE_* variables, and a HOME of its own.
// Real serve and connect processes carry -L and -R echo traffic.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundPort, startConnect, startServe, type MuxtunOptions } from '../support/muxtun.js';
import { echoServer, exchange, freePort } from '../support/net.js';
import { metricsPort, scrape } from '../support/prometheus.js';
import { repoRoot } from '../support/process.js';

const run = promisify(execFile);
const supported = process.platform === 'linux';
const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

describe.runIf(supported)('single executable (dist/muxtun-linux-x64)', () => {
  let temp: string;
  let binary: string;
  let cwd: string;
  let env: NodeJS.ProcessEnv;
  /** The single executable, run from its folder with nothing inherited. */
  const muxtun = (): MuxtunOptions => ({ executable: binary, cwd, inheritEnv: false, env });

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
    if (temp) await rm(temp, { recursive: true, force: true });
  });

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

    // -L and -R refuse port 0, so take ports that were free a moment ago.
    const [listenL, listenR] = [await freePort(), await freePort()];
    // serve logs through pino-pretty, connect through pino.destination: both loggers must survive bundling.
    const serve = await startServe({ ...muxtun(), stateDir: join(temp, 'state'), logFormat: 'pretty' });
    await serve.process.waitForStderr('a pretty "listening" log line', (line) => (/\] INFO: listening$/.test(line) ? true : undefined));

    const connect = await startConnect(serve, {
      ...muxtun(),
      local: [`127.0.0.1:${listenL}:127.0.0.1:${echoL.port}`],
      remote: [`127.0.0.1:${listenR}:127.0.0.1:${echoR.port}`],
      args: ['--metrics', '127.0.0.1:0'],
    });
    const localPort = boundPort((await connect.process.waitForLog('-L listening')).forward);
    const remotePort = boundPort((await connect.process.waitForLog('-R listening on the server')).forward);

    const payloadL = randomBytes(256 * 1024);
    expect((await exchange(localPort, payloadL)).equals(payloadL)).toBe(true);
    const payloadR = randomBytes(256 * 1024);
    expect((await exchange(remotePort, payloadR)).equals(payloadR)).toBe(true);

    // The binary's entry, too, tunes V8's young generation before loading muxtun (src/cli/heap-tuning.ts).
    const metrics = await scrape(await metricsPort(connect.process));
    expect(metrics.value('nodejs_heap_space_size_total_bytes', { space: 'new' })).toBeLessThanOrEqual(2 * 1024 * 1024);

    const connectExit = await connect.process.stop();
    const serveExit = await serve.process.stop();
    // SIGTERM is a clean stop (exit 0), not a crash or the SIGKILL fallback.
    expect(connectExit.code, connect.process.tail()).toBe(0);
    expect(serveExit.code, serve.process.tail()).toBe(0);
  });
});
