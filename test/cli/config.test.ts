/**
 * Config files for `serve` and `connect` (--config FILE, TOML), run
 * in-process through `main()` as in usage.test.ts: every option round-trips
 * through a file, flags beat the file and the file beats the environment
 * and defaults, each kind of mistake names FILE:LINE and the key, `--check`
 * prints the resolved settings with the token masked, a file holding a token
 * must be private, connect finds connect.toml in the config dir, and
 * relative paths are relative to the file.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import type { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connectCommand } from '../../src/cli/connect-command.js';
import { FILE_OPTIONS, commandLine, mergeConfig } from '../../src/cli/config/settings.js';
import { main } from '../../src/cli/main.js';
import type { CommandContext } from '../../src/cli/process.js';
import { serveCommand } from '../../src/cli/serve-command.js';
import { makeLeaf, writePem } from '../support/certs.js';
import { tempDir } from '../support/fs.js';

const TOKEN = 'config-test-token-0123456789';
const FINGERPRINT = `sha256:${'ab'.repeat(32)}`;

/** An environment that cannot configure muxtun by accident (no real home, state or config dir). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: '/nonexistent-muxtun-unit', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', PATH: process.env.PATH ?? '', ...extra };
}

class Collector extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += String(chunk);
    callback();
  }
}

async function run(argv: string[], environment: NodeJS.ProcessEnv = env()): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Collector();
  const stderr = new Collector();
  const code = await main(argv, { env: environment, stdout, stderr });
  return { code, stdout: stripVTControlCharacters(stdout.text), stderr: stripVTControlCharacters(stderr.text) };
}

/** Writes `lines` as a TOML file (mode 0600 unless told) in a fresh temp dir. */
async function configFile(lines: string[], options: { name?: string; mode?: number; dir?: string } = {}): Promise<string> {
  const path = join(options.dir ?? (await tempDir('muxtun-config-')), options.name ?? 'muxtun.toml');
  await writeFile(path, `${lines.join('\n')}\n`);
  await chmod(path, options.mode ?? 0o600);
  return path;
}

/** The `key = value  # origin` line of `--check` output for `key`. */
function setting(stdout: string, key: string): string | undefined {
  return stdout.split('\n').find((line) => line.startsWith(`${key} = `) || line.startsWith(`# ${key}: `));
}

beforeEach(() => {
  vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Error(`main called process.exit(${String(code)})`);
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('every option round-trips through a file', () => {
  const context: CommandContext = { env: env(), stdout: new Collector(), stderr: new Collector() };
  const commands: Array<[string, () => Command]> = [
    ['serve', () => serveCommand(context)],
    ['connect', () => connectCommand(context)],
  ];

  /** Parses argv with the command's real option table, without running its action. */
  async function parsed(make: () => Command, argv: string[]): Promise<Command> {
    const command = make().exitOverride();
    let seen: Command | undefined;
    command.action((...args: unknown[]) => {
      seen = args.at(-1) as Command;
    });
    await command.parseAsync(argv, { from: 'user' });
    if (seen === undefined) throw new Error('action not run');
    return seen;
  }

  for (const [name, make] of commands) {
    it(`${name}: each flag and its key give the same value`, async () => {
      const command = make();
      const keys = commandLine(await parsed(make, [])).keys;
      // Every option but those about the file itself is a key.
      const optionNames = command.options.filter((option) => !FILE_OPTIONS.includes(option.attributeName() as (typeof FILE_OPTIONS)[number])).map((option) => option.attributeName());
      expect([...new Set(optionNames)].sort()).toEqual([...keys.values()].map((spec) => spec.attribute).sort());

      const dir = await tempDir('muxtun-roundtrip-');
      const argv: string[] = [];
      const toml: string[] = [];
      for (const spec of keys.values()) {
        const flag = spec.spellings[0]!;
        const sample = (i: number): string => spec.choices?.[i % spec.choices.length] ?? (spec.path ? join(dir, `path-${i}`) : spec.numeric ? String(7 + i) : `value-${i}`);
        switch (spec.kind) {
          case 'boolean':
            argv.push(flag);
            toml.push(`${spec.key} = ${!flag.startsWith('--no-')}`);
            break;
          case 'count':
            argv.push(flag, flag);
            toml.push(`${spec.key} = 2`);
            break;
          case 'string':
            argv.push(flag, sample(0));
            // Numbers bare where the option takes one: port = 7, not only port = "7".
            toml.push(`${spec.key} = ${spec.numeric ? sample(0) : JSON.stringify(sample(0))}`);
            break;
          case 'strings':
            argv.push(flag, sample(0), flag, sample(1));
            toml.push(`${spec.key} = [${JSON.stringify(sample(0))}, ${spec.numeric ? sample(1) : JSON.stringify(sample(1))}]`);
            break;
        }
      }
      const fromFlags = commandLine(await parsed(make, argv));
      const file = await configFile(toml, { dir });
      const fromFile = await mergeConfig(commandLine(await parsed(make, [])), { file, ...(name === 'connect' ? { extraKeys: ['server'] } : {}) });
      for (const spec of keys.values()) {
        expect(fromFile.values[spec.attribute], spec.key).toEqual(fromFlags.values[spec.attribute]);
        expect(fromFile.origin(spec.attribute), spec.key).toEqual({ kind: 'file', file, line: toml.findIndex((line) => line.startsWith(`${spec.key} =`)) + 1 });
      }
    });
  }

  it('port = 4443 and port = "4443" are the same', async () => {
    for (const value of ['4443', '"4443"']) {
      const file = await configFile([`port = ${value}`, `token = "${TOKEN}"`, 'state-dir = "state"']);
      const { code, stdout, stderr } = await run(['serve', '--config', file, '--check']);
      expect(code, stderr).toBe(0);
      expect(setting(stdout, 'port')).toMatch(/^port = 4443 +# file .*:1$/);
    }
  });
});

describe('precedence: flag > file > environment > default', () => {
  it('serve: a flag beats the file, the file beats the default', async () => {
    const file = await configFile(['max-sessions = 100', 'max-streams = 50', `token = "${TOKEN}"`, 'state-dir = "state"']);
    const { code, stdout, stderr } = await run(['serve', '--config', file, '--check', '--max-sessions', '200']);
    expect(code, stderr).toBe(0);
    expect(setting(stdout, 'max-sessions')).toMatch(/^max-sessions = 200 +# flag$/);
    expect(setting(stdout, 'max-streams')).toMatch(new RegExp(`^max-streams = 50 +# file ${file}:2$`));
    expect(setting(stdout, 'max-remote-listeners')).toMatch(/^max-remote-listeners = 32 +# default$/);
    expect(setting(stdout, 'host')).toMatch(/^host = "0.0.0.0" +# default$/);
  });

  it('connect: the server argument beats the file, the file beats MUXTUN_SERVER and MUXTUN_TOKEN', async () => {
    const dir = await tempDir('muxtun-config-');
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    const file = await configFile(['server = "file.example:4443"', 'token-file = "token"', 'local = ["8080:localhost:80"]', `fingerprint = "${FINGERPRINT}"`], { dir });
    const environment = env({ MUXTUN_SERVER: 'env.example:4443', MUXTUN_TOKEN: 'from-the-environment' });
    const fromFile = await run(['connect', '--config', file, '--check'], environment);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(setting(fromFile.stdout, 'server')).toMatch(new RegExp(`^server = "file.example:4443" +# file ${file}:1$`));
    expect(setting(fromFile.stdout, 'token')).toMatch(new RegExp(`^token = "\\*+" +# file ${file}:2$`));

    const fromFlag = await run(['connect', 'flag.example:4443', '--config', file, '--check'], environment);
    expect(setting(fromFlag.stdout, 'server')).toMatch(/^server = "flag.example:4443" +# flag$/);

    const fromEnv = await run(['connect', '--check', '-L', '1:a:1', '--insecure'], environment);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(setting(fromEnv.stdout, 'server')).toMatch(/^server = "env.example:4443" +# env MUXTUN_SERVER$/);
    expect(setting(fromEnv.stdout, 'token')).toMatch(/^token = "\*+" +# env MUXTUN_TOKEN$/);
  });

  it('a flag that picks another alternative drops the file\'s choice: -W beside forwards, --insecure beside a fingerprint, --token beside token-file', async () => {
    const file = await configFile(['server = "h:1"', 'token-file = "/nonexistent/token"', 'local = ["8080:localhost:80"]', `fingerprint = "${FINGERPRINT}"`]);
    const { code, stdout, stderr } = await run(['connect', '--config', file, '--check', '-W', 'internal:22', '--insecure', '--token', TOKEN]);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('# forwards: -W internal:22');
    expect(stdout).toContain('# trusts: anything');
    expect(setting(stdout, 'local')).toBe('# local: not set');
    expect(setting(stdout, 'token-file')).toBe('# token-file: not set');
  });

  it('a repeatable flag replaces the file\'s list', async () => {
    const file = await configFile(['server = "h:1"', `token = "${TOKEN}"`, 'local = ["8080:localhost:80", "8081:localhost:81"]', 'insecure = true']);
    const { stdout } = await run(['connect', '--config', file, '--check', '-L', '9090:localhost:90']);
    expect(setting(stdout, 'local')).toMatch(/^local = \["9090:localhost:90"\] +# flag$/);
  });
});

describe('mistakes in the file: exit 2, naming FILE:LINE and the key', () => {
  const base = [`token = "${TOKEN}"`, 'state-dir = "state"'];
  const cases: Array<{ name: string; lines: string[]; message: (file: string) => string | RegExp }> = [
    { name: 'a syntax error', lines: [...base, 'allow-local = ["db:5432",', 'port = 1'], message: (file) => new RegExp(`^muxtun: ${file}:4:1: not valid TOML: .*\\n\\n3: .*allow-local`) },
    { name: 'an unknown key', lines: [...base, 'max-session = 5'], message: (file) => `muxtun: ${file}:3: max-session: unknown key (did you mean "max-sessions"?)` },
    { name: 'a camelCase key', lines: [...base, 'maxSessions = 5'], message: (file) => `${file}:3: maxSessions: unknown key (did you mean "max-sessions"?)` },
    { name: 'a no- key', lines: [...base, 'no-tls-listen = true'], message: (file) => `${file}:3: no-tls-listen: unknown key; write tls-listen = false` },
    { name: 'a table', lines: [...base, '[limits]', 'max-streams = 5'], message: (file) => `${file}:3: limits: unknown key` },
    { name: 'a string for a list', lines: [...base, 'allow-local = "db:5432"'], message: (file) => `${file}:3: allow-local: expected an array of strings (allow-local = [...]), got a string ("db:5432")` },
    { name: 'a string for a boolean', lines: [...base, 'tls-listen = "no"'], message: (file) => `${file}:3: tls-listen: expected true or false, got a string ("no")` },
    { name: 'a number where a name goes', lines: [...base, 'host = 1'], message: (file) => `${file}:3: host: expected a string, got a number (1)` },
    { name: 'a choice not offered', lines: [...base, 'log-level = "loud"'], message: (file) => `${file}:3: log-level: "loud" is not one of "fatal", "error"` },
    { name: 'a value that is no number', lines: [...base, '', '# limits', 'max-sessions = "lots"'], message: (file) => `${file}:5: max-sessions: "lots" is not a whole number` },
    { name: 'a negative number', lines: [...base, 'idle-timeout = -1'], message: (file) => `${file}:3: idle-timeout: "-1" is not a number of seconds` },
    { name: 'a port out of range', lines: [...base, 'port = 70000'], message: (file) => `${file}:3: port: port 70000 is out of range` },
    { name: 'a port range out of range, written as a number', lines: [...base, 'allow-remote = [9000, 70000]'], message: (file) => `${file}:3: allow-remote "70000": port 70000 is out of range` },
    { name: 'a bad --allow-remote range', lines: [...base, 'allow-remote = [', '  "9000-9100",', '  "x",', ']'], message: (file) => `${file}:3: allow-remote "x": "x" is not a port number` },
    { name: 'a value the tunnel layer refuses', lines: [...base, 'max-sessions = 0'], message: (file) => `${file}:3: max-sessions: must be an integer from 1 to 1000000, got 0` },
    { name: 'seconds the tunnel layer refuses', lines: [...base, 'heartbeat-interval = 0'], message: (file) => `${file}:3: heartbeat-interval: must be from 0.001 to` },
    { name: 'ws-path without ws-listen', lines: [...base, 'ws-path = "/t"'], message: (file) => `${file}:3: ws-path goes with --ws-listen` },
    { name: 'tls-listen = false alone', lines: [...base, 'tls-listen = false'], message: (file) => `${file}:3: tls-listen = false needs --ws-listen: the server must listen somewhere` },
    { name: 'a short token', lines: ['token = "short"', 'state-dir = "state"'], message: (file) => `${file}:1: token: the token has 5 characters` },
  ];
  for (const { name, lines, message } of cases) {
    it(`serve: ${name}`, async () => {
      const file = await configFile(lines);
      for (const check of [['--check'], []]) {
        const { code, stdout, stderr } = await run(['serve', '--config', file, ...check]);
        expect(code, stderr).toBe(2);
        const expected = message(file);
        if (typeof expected === 'string') expect(stderr).toContain(expected);
        else expect(stderr).toMatch(expected);
        expect(stdout).toBe('');
      }
      // Nothing was written: the state dir is only created by a start that gets that far.
      expect(existsSync(join(file, '..', 'state'))).toBe(false);
    });
  }

  const connectBase = ['server = "h:1"', `token = "${TOKEN}"`, 'insecure = true'];
  const connectCases: Array<{ name: string; lines: string[]; message: (file: string) => string }> = [
    { name: 'a bad -L spec', lines: [...connectBase, 'local = ["8080:localhost:80", "80"]'], message: (file) => `${file}:4: local "80": expected [bind:]port:host:hostport` },
    { name: 'a bad -R spec', lines: [...connectBase, 'remote = ["x:y:z"]'], message: (file) => `${file}:4: remote "x:y:z": listening port: "x" is not a port number` },
    { name: 'a bad -D spec', lines: [...connectBase, 'dynamic = ["1:2:3"]'], message: (file) => `${file}:4: dynamic "1:2:3": expected [bind:]port` },
    { name: 'a bad server', lines: ['server = "h:70000"', `token = "${TOKEN}"`, 'local = ["1:a:1"]'], message: (file) => `${file}:1: server: port 70000 is out of range` },
    { name: 'a -L port twice', lines: [...connectBase, 'local = ["8080:a:1", "8080:b:2"]'], message: (file) => `${file}:4: local 8080 given twice` },
    { name: 'two ways of trust in one file', lines: [...connectBase, `fingerprint = "${FINGERPRINT}"`, 'local = ["1:a:1"]'], message: (file) => `${file}:4: fingerprint and ${file}:3: insecure: choose one way to trust the server` },
    { name: 'a reconnect-max the tunnel layer refuses', lines: [...connectBase, 'local = ["1:a:1"]', 'reconnect-max = 99999999'], message: (file) => `${file}:5: reconnect-max: must be from 0.001 to 3600 seconds` },
  ];
  for (const { name, lines, message } of connectCases) {
    it(`connect: ${name}`, async () => {
      const file = await configFile(lines);
      const { code, stdout, stderr } = await run(['connect', '--config', file, '--check']);
      expect(code, stderr).toBe(2);
      expect(stderr).toContain(message(file));
      expect(stdout).toBe('');
    });
  }

  it('the same bad value from a flag is still named by the flag', async () => {
    const file = await configFile([`token = "${TOKEN}"`, 'state-dir = "state"']);
    const { code, stderr } = await run(['serve', '--config', file, '--check', '--max-sessions', '0']);
    expect(code).toBe(2);
    expect(stderr).toContain('muxtun: --max-sessions: must be an integer from 1 to 1000000, got 0');
  });

  it('a missing --config file', async () => {
    const { code, stderr } = await run(['serve', '--config', '/nonexistent/serve.toml']);
    expect(code).toBe(2);
    expect(stderr).toContain('config file /nonexistent/serve.toml: cannot read it (no such file)');
  });
});

describe('--check', () => {
  it('serve: prints every setting with its origin, the token masked, and creates nothing', async () => {
    const dir = await tempDir('muxtun-config-');
    const file = await configFile(['port = 4443', `token = "${TOKEN}"`, 'state-dir = "state"', 'allow-local = ["db:5432"]'], { dir });
    const { code, stdout, stderr } = await run(['serve', '--config', file, '--check']);
    expect(code, stderr).toBe(0);
    expect(stdout).not.toContain(TOKEN);
    expect(setting(stdout, 'token')).toMatch(new RegExp(`^token = "\\*{8}" +# file ${file}:2$`));
    expect(setting(stdout, 'state-dir')).toMatch(new RegExp(`^state-dir = "${join(dir, 'state')}" +# file ${file}:3$`));
    expect(setting(stdout, 'cert')).toBe('# cert: not set');
    expect(stdout).toContain(`# certificate: to be generated in ${join(dir, 'state')} at the first start`);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('serve: a token from the environment is masked too; with no token one is to be generated', async () => {
    const file = await configFile(['state-dir = "state"'], { mode: 0o644 });
    const fromEnv = await run(['serve', '--config', file, '--check'], env({ MUXTUN_TOKEN: TOKEN }));
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stdout).not.toContain(TOKEN);
    expect(setting(fromEnv.stdout, 'token')).toMatch(/^token = "\*{8}" +# env MUXTUN_TOKEN$/);
    const generated = await run(['serve', '--config', file, '--check']);
    expect(generated.code, generated.stderr).toBe(0);
    expect(setting(generated.stdout, 'token')).toMatch(/# to be generated in .*state\/token at the first start$/);
  });

  it('the output is TOML that reads back as a config file', async () => {
    const file = await configFile(['server = "h:1"', `token = "${TOKEN}"`, 'local = ["8080:localhost:80"]', 'insecure = true', 'heartbeat-interval = 2.5']);
    const { stdout } = await run(['connect', '--config', file, '--check']);
    const again = await configFile(stdout.split('\n').map((line) => line.replace('"********"', JSON.stringify(TOKEN))));
    const second = await run(['connect', '--config', again, '--check']);
    expect(second.code, second.stderr).toBe(0);
    expect(setting(second.stdout, 'heartbeat-interval')).toMatch(/^heartbeat-interval = 2.5 /);
  });

  it('exit 2 for what only reading files finds (a missing token file)', async () => {
    const file = await configFile(['server = "h:1"', 'token-file = "no-such-token"', 'local = ["1:a:1"]', 'insecure = true']);
    const { code, stderr } = await run(['connect', '--config', file, '--check']);
    expect(code).toBe(2);
    expect(stderr).toContain(`Cannot read token file ${join(file, '..', 'no-such-token')}: no such file`);
  });
});

describe('secrets', () => {
  it('refuses a file with a token that group or others can read, giving the chmod fix', async () => {
    const file = await configFile(['# shared', `token = "${TOKEN}"`, 'state-dir = "state"'], { mode: 0o640 });
    const { code, stderr } = await run(['serve', '--config', file, '--check']);
    expect(code).toBe(2);
    expect(stderr).toContain(`config file ${file} holds a secret (token on line 2) and is readable or writable by group or others (mode 0640)`);
    expect(stderr).toContain(`  chmod 600 ${file}`);
    expect(stderr).not.toContain(TOKEN);
  });

  it('accepts a readable file that names a token file instead', async () => {
    const dir = await tempDir('muxtun-config-');
    await writeFile(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    const file = await configFile(['token-file = "token"', 'state-dir = "state"'], { dir, mode: 0o644 });
    const { code, stdout, stderr } = await run(['serve', '--config', file, '--check']);
    expect(code, stderr).toBe(0);
    expect(setting(stdout, 'token-file')).toMatch(new RegExp(`^token-file = "${join(dir, 'token')}" +# file ${file}:1$`));
  });
});

describe('connect.toml in the config dir', () => {
  async function xdgConfig(lines: string[]): Promise<{ home: string; file: string }> {
    const home = await tempDir('muxtun-xdg-');
    await mkdir(join(home, 'muxtun'));
    return { home, file: await configFile(lines, { dir: join(home, 'muxtun'), name: 'connect.toml' }) };
  }

  it('is read when no --config is given, and skipped with --no-config', async () => {
    const { home, file } = await xdgConfig(['server = "h:1"', `token = "${TOKEN}"`, 'local = ["1:a:1"]', 'insecure = true']);
    const found = await run(['connect', '--check'], env({ XDG_CONFIG_HOME: home }));
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain(`(config file ${file})`);
    expect(setting(found.stdout, 'local')).toMatch(new RegExp(`# file ${file}:3$`));
    const skipped = await run(['connect', '--check', '--no-config'], env({ XDG_CONFIG_HOME: home }));
    expect(skipped.code).toBe(2);
    expect(skipped.stderr).toContain('give the server as HOST:PORT or set MUXTUN_SERVER');
  });

  it('is found under HOME/.config without XDG_CONFIG_HOME; --config picks another file', async () => {
    const home = await tempDir('muxtun-home-');
    await mkdir(join(home, '.config', 'muxtun'), { recursive: true });
    const file = await configFile(['server = "h:1"', `token = "${TOKEN}"`, 'dynamic = [1080]', 'insecure = true'], { dir: join(home, '.config', 'muxtun'), name: 'connect.toml' });
    const found = await run(['connect', '--check'], env({ HOME: home }));
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain(`(config file ${file})`);
    const other = await configFile(['server = "other:1"', `token = "${TOKEN}"`, 'local = ["1:a:1"]', 'insecure = true']);
    const chosen = await run(['connect', '--check', '--config', other], env({ HOME: home }));
    expect(setting(chosen.stdout, 'server')).toMatch(/^server = "other:1"/);
    expect(setting(chosen.stdout, 'dynamic')).toBe('# dynamic: not set');
  });

  it('a default connect.toml with a token must be private too', async () => {
    const { home } = await xdgConfig(['server = "h:1"', `token = "${TOKEN}"`, 'local = ["1:a:1"]']);
    await chmod(join(home, 'muxtun', 'connect.toml'), 0o644);
    const { code, stderr } = await run(['connect', '--check'], env({ XDG_CONFIG_HOME: home }));
    expect(code).toBe(2);
    expect(stderr).toContain('chmod 600');
  });
});

describe('relative paths are relative to the config file', () => {
  it('serve: cert, key and token-file', async () => {
    const dir = await tempDir('muxtun-config-');
    const pem = await makeLeaf();
    const { fingerprint } = await writePem(pem);
    await mkdir(join(dir, 'tls'));
    await writeFile(join(dir, 'tls', 'cert.pem'), pem.cert);
    await writeFile(join(dir, 'tls', 'key.pem'), pem.key, { mode: 0o600 });
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    const file = await configFile(['cert = "tls/cert.pem"', 'key = "./tls/key.pem"', 'token-file = "token"'], { dir });
    const { code, stdout, stderr } = await run(['serve', '--config', file, '--check']);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`# certificate: ${join(dir, 'tls', 'cert.pem')}, fingerprint ${fingerprint}`);
  });

  it('connect: known-hosts and ca; a flag\'s path stays relative to the working directory', async () => {
    const dir = await tempDir('muxtun-config-');
    const file = await configFile(['server = "h:1"', `token = "${TOKEN}"`, 'local = ["1:a:1"]', 'known-hosts = "hosts/known"'], { dir });
    const { stdout, stderr: why } = await run(['connect', '--config', file, '--check']);
    expect(stdout, why).toContain(`# trusts: on first use, recorded in ${join(dir, 'hosts', 'known')}`);
    const missingCa = await configFile(['server = "h:1"', `token = "${TOKEN}"`, 'local = ["1:a:1"]', 'ca = "ca.pem"'], { dir, name: 'with-ca.toml' });
    const { code, stderr } = await run(['connect', '--config', missingCa, '--check']);
    expect(code).toBe(2);
    expect(stderr).toContain(`${missingCa}:4: ca ${join(dir, 'ca.pem')}: cannot read it (ENOENT)`);
    const flagged = await run(['connect', '--config', file, '--check', '--known-hosts', 'here/known']);
    expect(flagged.stdout).toContain('# trusts: on first use, recorded in here/known');
  });
});
