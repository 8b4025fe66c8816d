// What `npm pack` ships, installed the way a user would: `npm install -g` of
// the tarball into a temporary prefix, then the `bin`, the `exports` map and
// its type declarations used from outside the repository.
//
// The dependencies come from npm's cache that `npm ci` filled, and from the
// registry for what it lacks (--prefer-offline): npm ci installs from the
// lockfile, so the cache may not hold the metadata a range install needs.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, repoRoot } from '../support/process.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

describe('npm package', () => {
  let temp: string;
  let files: string[];
  let prefix: string;
  let installed: string;
  const env = cleanEnv();

  beforeAll(async () => {
    temp = await mkdtemp(join(tmpdir(), 'muxtun-pack-'));
    // --ignore-scripts: dist/ is already built by `npm test`; no rebuild under other running tests.
    const { stdout } = await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', temp], { cwd: repoRoot, env, timeout: 60_000 });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = packed!.files.map((f) => f.path);
    prefix = join(temp, 'prefix');
    await run(npm, ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(temp, packed!.filename)], {
      cwd: temp,
      env,
      timeout: 120_000,
    });
    installed = join(prefix, 'lib', 'node_modules', 'muxtun');
  }, 180_000);

  afterAll(async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('ships the built code, bin, README and LICENSE, and nothing else', () => {
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'bin/muxtun.js', 'dist/cli/main.js', 'dist/index.d.ts', 'dist/muxado/index.d.ts']));
    const unexpected = files.filter((path) => !/^(package\.json|README\.md|LICENSE|bin\/muxtun\.js|dist\/.+\.(js|d\.ts))$/.test(path));
    expect(unexpected).toEqual([]);
    expect(files.filter((path) => /^(test|scripts|src|examples|docs)\//.test(path))).toEqual([]);
    // Neither the ~100 MB single binary nor source maps of sources that are not shipped.
    expect(files.filter((path) => path.startsWith('dist/muxtun-') || path.endsWith('.map'))).toEqual([]);
  });

  it('puts a working `muxtun` on the PATH of the install prefix', async () => {
    const bin = join(prefix, 'bin', 'muxtun');
    const versionRun = await run(bin, ['--version'], { cwd: temp, env });
    expect(versionRun.stdout.trim()).toBe(version);
    const help = await run(bin, ['--help'], { cwd: temp, env });
    expect(help.stdout).toContain('Usage: muxtun [options] [command]');
    const serveHelp = await run(bin, ['serve', '--help'], { cwd: temp, env });
    expect(serveHelp.stdout).toContain('--state-dir');
  });

  it('resolves `muxtun` and `muxtun/muxado` through the exports map', async () => {
    // A script beside the prefix's node_modules finds the package the way any dependent does.
    const probe = join(prefix, 'lib', 'probe.mjs');
    await writeFile(
      probe,
      `const engine = await import('muxtun/muxado');
const api = await import('muxtun');
console.log(JSON.stringify({ client: typeof engine.client, server: typeof engine.server, TunnelServer: typeof api.TunnelServer, TunnelClient: typeof api.TunnelClient, main: typeof api.main }));
try { await import('muxtun/dist/cli/main.js'); console.log('deep import allowed'); } catch (error) { console.log(error.code); }
`,
    );
    const { stdout } = await run(process.execPath, [probe], { cwd: join(prefix, 'lib'), env });
    const [kinds, deep] = stdout.trim().split('\n');
    // The API is the tunnel; the CLI's main is not part of it (importing 'muxtun' loads no CLI code).
    expect(JSON.parse(kinds!)).toEqual({ client: 'function', server: 'function', TunnelServer: 'function', TunnelClient: 'function', main: 'undefined' });
    // Only `.`, `./muxado` and `./package.json` are public.
    expect(deep).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('serves type declarations for both entry points to a TypeScript consumer', async () => {
    expect(existsSync(join(installed, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'muxado', 'index.d.ts'))).toBe(true);
    const lib = join(prefix, 'lib');
    await writeFile(
      join(lib, 'consumer.mts'),
      `import { client, server, type Session } from 'muxtun/muxado';
import { TunnelServer, type TunnelServerOptions } from 'muxtun';
import type { Duplex } from 'node:stream';
export function open(socket: Duplex): Session { return client(socket); }
export const serverFn: typeof server = server;
export const tunnel = (options: TunnelServerOptions): TunnelServer => new TunnelServer(options);
`,
    );
    await writeFile(
      join(lib, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          // @types/node from this repository: the consumer project has no node_modules/@types of its own.
          typeRoots: [join(repoRoot, 'node_modules', '@types')],
        },
        files: ['consumer.mts'],
      }),
    );
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', lib], { cwd: lib, env }).catch((error: { stdout: string }) => error);
    expect(result.stdout).toBe('');
  });
});
