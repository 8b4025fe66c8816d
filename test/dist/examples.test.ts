// examples/: the systemd unit and the Dockerfile, tried as far as this machine
// allows. Neither systemd (as PID 1) nor a Docker engine runs here, so:
//
// - the unit is checked by `systemd-analyze verify` and `security --offline`
//   where systemd-analyze exists, its keys are read as INI, and its ExecStart
//   command line is run for real (paths mapped into a temp dir) with the token
//   from an EnvironmentFile-style file;
// - the Dockerfile is read instruction by instruction, and its two stages are
//   replayed in temp folders: the COPYs (through its .dockerignore), its
//   `npm ci`/`npm run` steps, then the runtime stage's ENTRYPOINT + CMD starts a
//   server. Only the base image and the non-npm RUN line (mkdir/chown) are not
//   reproduced: that line is checked for what it must do instead.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerignoreAllows, execForm, parseCopy, parseDockerfile, type Stage } from './dockerfile.js';
import { runMuxtun, serveBanner } from '../support/muxtun.js';
import { tlsFingerprint } from '../support/net.js';
import { onPath } from '../support/ports.js';
import { cleanEnv, repoRoot, TestProcess } from '../support/process.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let temp: string;

beforeAll(async () => {
  temp = await mkdtemp(join(tmpdir(), 'muxtun-examples-'));
});

afterAll(async () => {
  if (temp) await rm(temp, { recursive: true, force: true });
});

/** Runs a server command line as an example gives it, in the temp dir, with exactly `env`. */
function runExample(argv: string[], env: NodeJS.ProcessEnv): TestProcess {
  return new TestProcess({ command: argv[0]!, args: argv.slice(1), cwd: temp, env, name: 'serve (example)' });
}

/** Replaces `--flag value` in argv (the flag must be there). */
function replaceFlag(argv: string[], flag: string, value: string): string[] {
  const at = argv.indexOf(flag);
  if (at < 0 || at + 1 >= argv.length) throw new Error(`${flag} is missing from ${argv.join(' ')}`);
  return [...argv.slice(0, at + 1), value, ...argv.slice(at + 2)];
}

function flagValue(argv: string[], flag: string): string | undefined {
  const at = argv.indexOf(flag);
  return at < 0 ? undefined : argv[at + 1];
}

describe('examples/systemd/muxtun.service', () => {
  const unitPath = join(repoRoot, 'examples', 'systemd', 'muxtun.service');
  let unit: Map<string, Map<string, string[]>>;
  let execStart: string[];

  beforeAll(async () => {
    unit = parseUnit(await readFile(unitPath, 'utf8'));
    execStart = service('ExecStart')[0]!.split(/\s+/);
  });

  const service = (key: string): string[] => unit.get('Service')?.get(key) ?? [];

  it('runs serve as an unprivileged, sandboxed service with a private state dir', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(service('ExecStart')).toHaveLength(1);
    expect(execStart.slice(0, 2)).toEqual(['/usr/local/bin/muxtun', 'serve']);
    expect(service('DynamicUser')).toEqual(['yes']);
    expect(service('StateDirectory')).toEqual(['muxtun']);
    // serve refuses a state dir open to group or others.
    expect(service('StateDirectoryMode')).toEqual(['0700']);
    expect(flagValue(execStart, '--state-dir')).toBe('/var/lib/muxtun');
    // The control socket in the service's own runtime dir: a dynamic user has no home for the default.
    expect(service('RuntimeDirectory')).toEqual(['muxtun']);
    expect(service('RuntimeDirectoryMode')).toEqual(['0700']);
    expect(flagValue(execStart, '--control')).toBe('/run/muxtun/control.sock');
    expect(service('EnvironmentFile')).toEqual(['/etc/muxtun/muxtun.env']);
    // The token is never on the command line (visible in ps).
    expect(execStart.some((word) => word.startsWith('--token'))).toBe(false);
    // serve prints the token on stdout: it must not reach the journal.
    expect(service('StandardOutput')).toEqual(['null']);
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
    ] as const) {
      expect(service(key), key).toEqual([value]);
    }
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  // Skipped where systemd-analyze is missing, except in CI, where .ci/run installs it.
  it.runIf(onPath('systemd-analyze') || process.env.CI === 'true')('passes systemd-analyze verify and scores OK on security', async () => {
    // verify checks that ExecStart's program exists and is executable: point it at bin/muxtun.js.
    const copy = join(temp, 'muxtun.service');
    await writeFile(copy, (await readFile(unitPath, 'utf8')).replace('ExecStart=/usr/local/bin/muxtun ', `ExecStart=${join(repoRoot, 'bin', 'muxtun.js')} `));
    const verify = await run('systemd-analyze', ['verify', copy], { cwd: temp });
    // Unknown keys and bad values are only warnings (exit 0): any output is a finding.
    expect(verify.stderr + verify.stdout).toBe('');
    // Exposure 0-100 (shown as 0.0-10.0); 20 is well inside "OK". A hardening line removed pushes it over.
    const security = await run('systemd-analyze', ['security', '--offline=true', '--threshold=20', copy], { cwd: temp });
    expect(security.stdout).toMatch(/Overall exposure level for muxtun\.service: \d\.\d OK/);
  });

  it('has an ExecStart line that starts a working server, token from the EnvironmentFile', async () => {
    // The EnvironmentFile as the comment at the top of the unit creates it.
    const token = randomBytes(32).toString('base64').replace(/[/+=]/g, '');
    const envFile = join(temp, 'muxtun.env');
    await writeFile(envFile, `MUXTUN_TOKEN=${token}\n`, { mode: 0o600 });
    const fromFile = Object.fromEntries(
      (await readFile(envFile, 'utf8')).split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // StateDirectory= with StateDirectoryMode=0700.
    const stateDir = join(temp, 'systemd-state');
    await mkdir(stateDir, { mode: 0o700 });
    // RuntimeDirectory= with RuntimeDirectoryMode=0700.
    const runtimeDir = join(temp, 'systemd-run');
    await mkdir(runtimeDir, { mode: 0o700 });
    const controlPath = join(runtimeDir, basename(flagValue(execStart, '--control')!));
    let argv = replaceFlag(execStart, '--state-dir', stateDir);
    argv = replaceFlag(argv, '--port', '0');
    argv = replaceFlag(argv, '--control', controlPath);
    const serve = runExample([process.execPath, join(repoRoot, 'bin', 'muxtun.js'), ...argv.slice(1), '--host', '127.0.0.1'], {
      PATH: process.env.PATH,
      HOME: temp,
      ...fromFile,
    });
    const banner = await serveBanner(serve);
    expect(banner.token).toBe(token);
    expect(existsSync(join(stateDir, 'token'))).toBe(false);
    const listening = await serve.waitForLog('listening');
    expect(await tlsFingerprint(banner.port)).toBe(listening.fingerprint);
    // The status command the unit's comment gives answers on that socket, and serve warned about nothing.
    const status = await runMuxtun(['status', '--control', controlPath, '--json']);
    expect(status.exit.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ kind: 'serve' });
    expect(serve.tail()).toMatch(/"msg":"control socket listening/);
    expect(serve.tail()).not.toMatch(/"level":[456]0/);
    // SIGTERM (systemctl stop) is a clean stop.
    expect((await serve.stop()).code, serve.tail()).toBe(0);
  });
});

describe('examples/docker/Dockerfile', () => {
  const dockerfilePath = join(repoRoot, 'examples', 'docker', 'Dockerfile');
  let stages: Stage[];
  let allowed: (path: string) => boolean;

  beforeAll(async () => {
    stages = parseDockerfile(await readFile(dockerfilePath, 'utf8'));
    allowed = dockerignoreAllows(await readFile(`${dockerfilePath}.dockerignore`, 'utf8'));
  });

  const runtime = (): Stage => stages.at(-1)!;
  const last = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).at(-1);

  it('builds on node:20-slim and runs the CLI as a non-root user with a state volume on port 4443', () => {
    expect(stages.map((s) => s.from)).toEqual(['node:20-slim', 'node:20-slim']);
    const final = runtime();
    const user = last(final, 'USER');
    expect(user?.text).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user!.text);
    // USER comes after every RUN, so nothing at run time is root.
    const userIndex = final.instructions.indexOf(user!);
    expect(final.instructions.slice(userIndex).some((i) => i.keyword === 'RUN')).toBe(false);

    const entrypoint = execForm(last(final, 'ENTRYPOINT')!);
    expect(entrypoint).toEqual(['node', '/app/bin/muxtun.js']);
    expect(last(final, 'WORKDIR')?.text).toBe('/app');
    const cmd = execForm(last(final, 'CMD')!);
    expect(cmd[0]).toBe('serve');
    expect(last(final, 'EXPOSE')?.text).toBe('4443');
    expect(flagValue(cmd, '--port')).toBe('4443');
    const stateDir = flagValue(cmd, '--state-dir');
    expect(execForm(last(final, 'VOLUME')!)).toEqual([stateDir]);
    expect(final.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.text))).toBe(true);
    // The state dir must be the runtime user's and private, or serve refuses it.
    const prepare = final.instructions.find((i) => i.keyword === 'RUN' && i.text.includes(stateDir!));
    expect(prepare?.text).toContain(`chown ${user!.text}:${user!.text} ${stateDir}`);
    expect(prepare?.text).toContain(`chmod 700 ${stateDir}`);
  });

  it('copies only files that exist and that its .dockerignore lets into the context', () => {
    for (const stage of stages) {
      for (const copy of stage.instructions.filter((i) => i.keyword === 'COPY').map(parseCopy)) {
        if (copy.from !== undefined) {
          expect(stages.map((s) => s.name)).toContain(copy.from);
          continue;
        }
        for (const source of copy.sources) {
          expect(existsSync(join(repoRoot, source)), source).toBe(true);
          expect(allowed(source) || allowed(`${source}/x`), `${source} is excluded by Dockerfile.dockerignore`).toBe(true);
        }
      }
    }
  });

  it('replays both stages without Docker, and the image command starts a server', async () => {
    const roots = new Map<string, string>();
    // A build starts from the base image's environment, not vitest's (NODE_ENV=test).
    const { NODE_ENV: _ignored, ...env } = cleanEnv();
    let final: { root: string; workdir: string; env: NodeJS.ProcessEnv } | undefined;
    for (const [index, stage] of stages.entries()) {
      // The stage's filesystem: container path /x is <root>/x.
      const root = join(temp, `stage-${index}`);
      await mkdir(root, { recursive: true });
      const stageEnv: NodeJS.ProcessEnv = { ...env };
      let workdir = '/';
      for (const instruction of stage.instructions) {
        const here = join(root, workdir);
        switch (instruction.keyword) {
          case 'WORKDIR':
            workdir = instruction.text;
            await mkdir(join(root, workdir), { recursive: true });
            break;
          case 'ENV': {
            const [key, value] = instruction.text.split('=');
            stageEnv[key!] = value;
            break;
          }
          case 'COPY': {
            const copy = parseCopy(instruction);
            const base = copy.from === undefined ? repoRoot : roots.get(copy.from)!;
            for (const source of copy.sources) {
              const from = join(base, source);
              const to = copy.dest.endsWith('/') ? join(here, copy.dest, basename(source)) : join(here, copy.dest);
              await cp(from, to, {
                recursive: true,
                // The build context is what the .dockerignore lets in.
                filter: (path) => copy.from !== undefined || path === from || allowed(relative(repoRoot, path)),
              });
            }
            break;
          }
          case 'RUN':
            for (const command of instruction.text.split('&&').map((c) => c.trim())) {
              const [program, ...args] = command.split(/\s+/);
              if (program === 'npm' && (args[0] === 'ci' || args[0] === 'run')) {
                // Packages from npm's cache where it has them (see package.test.ts).
                const extra = args[0] === 'ci' ? ['--prefer-offline'] : [];
                await run(npm, [...args, ...extra], { cwd: here, env: stageEnv, timeout: 120_000 });
              } else if (program === 'mkdir' && args.includes('-p')) {
                await mkdir(join(root, args.at(-1)!), { recursive: true, mode: 0o700 });
              }
              // Left out: `npm cache clean` (it would empty this machine's cache), chown/chmod (checked above).
            }
            break;
          default:
            break;
        }
      }
      if (stage.name !== undefined) roots.set(stage.name, root);
      final = { root, workdir, env: stageEnv };
    }

    const { root, env: runtimeEnv } = final!;
    // Only production dependencies in the image.
    expect(existsSync(join(root, 'app', 'node_modules', 'pino'))).toBe(true);
    expect(existsSync(join(root, 'app', 'node_modules', 'typescript'))).toBe(false);
    expect(existsSync(join(root, 'app', 'dist', 'cli', 'main.js'))).toBe(true);

    const image = runtime();
    const [program, ...entryArgs] = execForm(last(image, 'ENTRYPOINT')!);
    expect(program).toBe('node');
    let cmd = execForm(last(image, 'CMD')!);
    cmd = replaceFlag(cmd, '--port', '0');
    cmd = replaceFlag(cmd, '--state-dir', join(root, flagValue(cmd, '--state-dir')!));
    const argv = [process.execPath, ...entryArgs.map((arg) => (arg.startsWith('/') ? join(root, arg) : arg)), ...cmd, '--host', '127.0.0.1', '--log-format', 'json'];
    const serve = runExample(argv, { PATH: process.env.PATH, HOME: temp, NODE_ENV: runtimeEnv.NODE_ENV });
    const { port } = await serveBanner(serve);
    await serve.waitForStdout('the connect line', (line) => (line.includes('MUXTUN_TOKEN=') ? line : undefined));
    expect(await tlsFingerprint(port)).toBe((await serve.waitForLog('listening')).fingerprint);
    // First start: the token and identity were generated into the volume.
    expect(existsSync(join(root, 'var', 'lib', 'muxtun', 'token'))).toBe(true);
    // SIGTERM (docker stop) is a clean stop.
    expect((await serve.stop()).code, serve.tail()).toBe(0);
  }, 240_000);
});

/** systemd's unit syntax as far as the example uses it: sections, `Key=value`, repeated keys, `#`/`;` comments. */
function parseUnit(source: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const [index, raw] of source.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!pair || !current || line.endsWith('\\')) throw new Error(`muxtun.service line ${index + 1}: not a Key=value line in a section: ${line}`);
    current.set(pair[1]!, [...(current.get(pair[1]!) ?? []), pair[2]!]);
  }
  return sections;
}
