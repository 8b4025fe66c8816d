/**
 * The command line's help, version and bad-argument answers, run in-process
 * through `main(argv, context)` with streams that collect what is written:
 * the same exit codes and messages a user sees, without a child process per
 * case. What needs a real process (broken pipes, signals, sockets) stays in
 * test/e2e/cli.test.ts.
 *
 * `main` is meant to be re-entrant, so each run is also checked for what it
 * leaves behind in this process: signal handlers and active resources.
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';

const FAKE_FINGERPRINT = `sha256:${'ab'.repeat(32)}`;
const SERVER = '127.0.0.1:4443';

/** An environment that cannot configure muxtun by accident (no real home, state or known_hosts). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: '/nonexistent-muxtun-unit', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', PATH: process.env.PATH ?? '', ...extra };
}
const withToken = env({ MUXTUN_TOKEN: 'unit-token' });

/** A Writable that keeps the text written to it. */
class Collector extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += String(chunk);
    callback();
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** SIGINT/SIGTERM handlers the run added and did not remove (removed again here, so runs stay independent). */
  leakedSignalHandlers: number;
  /** Active resources (timers, handles, requests) the run left behind, by type. */
  leakedResources: string[];
}

const signals = ['SIGINT', 'SIGTERM'] as const;
/** Lets whatever a finished run scheduled for "soon" happen before looking for leftovers. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The items of `after` that are not in `before` (as multisets). */
function added(before: string[], after: string[]): string[] {
  const left = [...before];
  return after.filter((item) => {
    const i = left.indexOf(item);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

async function run(argv: string[], environment: NodeJS.ProcessEnv = withToken): Promise<Run> {
  const handlersBefore = new Map(signals.map((signal) => [signal, process.listeners(signal)]));
  await settle();
  const resourcesBefore = process.getActiveResourcesInfo();
  const stdout = new Collector();
  const stderr = new Collector();
  let leakedSignalHandlers = 0;
  let code: number;
  try {
    code = await main(argv, { env: environment, stdout, stderr });
  } finally {
    for (const signal of signals) {
      const before = handlersBefore.get(signal)!;
      for (const handler of process.listeners(signal)) {
        if (before.includes(handler)) continue;
        leakedSignalHandlers++;
        process.off(signal, handler);
      }
    }
  }
  await settle();
  const leakedResources = added(resourcesBefore, process.getActiveResourcesInfo());
  return { code, stdout: stripVTControlCharacters(stdout.text), stderr: stripVTControlCharacters(stderr.text), leakedSignalHandlers, leakedResources };
}

beforeEach(() => {
  // An in-process run must never end the test worker.
  vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Error(`main called process.exit(${String(code)})`);
  });
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('muxtun without a command', () => {
  it('prints the usage on stderr and exits 2 (like ssh and git)', async () => {
    const { code, stdout, stderr } = await run([]);
    expect(code).toBe(2);
    expect(stderr).toContain('Usage: muxtun');
    expect(stderr).toContain('serve');
    expect(stderr).toContain('connect');
    expect(stdout).toBe('');
  });

  it('--version prints the version in package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const { code, stdout, stderr } = await run([flag]);
      expect(code, flag).toBe(0);
      expect(stdout.trim(), flag).toBe(version);
      expect(stderr, flag).toBe('');
    }
  });

  it('serve --help and connect --help describe the options and exit 0', async () => {
    const serve = await run(['serve', '--help']);
    expect(serve.code).toBe(0);
    expect(serve.stdout).toContain('--allow-remote');
    const connect = await run(['connect', '--help']);
    expect(connect.code).toBe(0);
    expect(connect.stdout).toContain('-L, --local');
  });
});

describe('bad arguments: exit 2 and a message naming the problem', () => {
  const cases: Array<{ name: string; args: string[]; env?: NodeJS.ProcessEnv; message: RegExp }> = [
    { name: '-L with only a port', args: ['connect', SERVER, '-L', '80'], message: /-L 80: expected \[bind:\]port:host:hostport/ },
    { name: '-R with words for ports', args: ['connect', SERVER, '-R', 'x:y:z'], message: /-R x:y:z: listening port: "x" is not a port number/ },
    { name: 'a -L port above 65535', args: ['connect', SERVER, '-L', '70000:localhost:80'], message: /-L 70000:localhost:80: listening port: port 70000 is out of range/ },
    { name: 'a -R target port above 65535', args: ['connect', SERVER, '-R', '9000:localhost:70000'], message: /target port: port 70000 is out of range/ },
    { name: 'a server port above 65535', args: ['connect', '127.0.0.1:70000', '-L', '8080:localhost:80'], message: /server address: port 70000 is out of range/ },
    { name: 'serve --port above 65535', args: ['serve', '--port', '70000'], message: /--port: port 70000 is out of range/ },
    { name: 'no server', args: ['connect', '-L', '8080:localhost:80'], message: /give the server as HOST:PORT or set MUXTUN_SERVER/ },
    { name: 'no token', args: ['connect', SERVER, '-L', '8080:localhost:80'], env: env(), message: /no token: set MUXTUN_TOKEN/ },
    { name: 'no forwards', args: ['connect', SERVER], message: /nothing to forward/ },
    { name: '--fingerprint garbage', args: ['connect', SERVER, '-L', '8080:localhost:80', '--fingerprint', 'garbage'], message: /--fingerprint: Invalid certificate fingerprint "garbage"/ },
    { name: '--cert without --key', args: ['serve', '--cert', '/nonexistent/cert.pem'], message: /--cert and --key go together/ },
    { name: 'an unknown option of connect', args: ['connect', SERVER, '--frobnicate'], message: /unknown option '--frobnicate'/ },
    { name: 'an unknown option of serve', args: ['serve', '--frobnicate'], message: /unknown option '--frobnicate'/ },
    { name: 'an unknown command', args: ['frobnicate'], message: /unknown command 'frobnicate'/ },
    { name: 'two ways of trust at once', args: ['connect', SERVER, '-L', '8080:localhost:80', '--insecure', '--fingerprint', FAKE_FINGERPRINT], message: /choose one way to trust the server/ },
  ];
  for (const { name, args, env: environment, message } of cases) {
    it(name, async () => {
      const { code, stdout, stderr, leakedResources } = await run(args, environment ?? withToken);
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).toContain('--help');
      expect(stdout).toBe('');
      // Nothing was started: no socket, timer or file handle may be left open.
      expect(leakedResources).toEqual([]);
    });
  }
});

describe('what an in-process run leaves behind', () => {
  it.each([[[]], [['--version']], [['connect', '--help']], [['serve', '--frobnicate']], [['frobnicate']]])(
    '%j (answered by the argument parser) adds no signal handlers',
    async (argv) => {
      const { leakedSignalHandlers, leakedResources } = await run(argv);
      expect(leakedSignalHandlers).toBe(0);
      expect(leakedResources).toEqual([]);
    },
  );

  // Regression: the commands once installed their SIGINT/SIGTERM handlers
  // before checking their arguments and kept them after a usage error, so
  // an embedding that called main() kept one pair per call.
  it('a usage error found by a command leaves no SIGINT/SIGTERM handlers behind', async () => {
    for (const argv of [['connect', SERVER, '-L', '80'], ['serve', '--port', '70000']]) {
      const { code, leakedSignalHandlers } = await run(argv);
      expect(code).toBe(2);
      expect(leakedSignalHandlers, argv.join(' ')).toBe(0);
    }
  });
});
