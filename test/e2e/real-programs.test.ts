/**
 * -D, reverse dynamic -R and -W with the programs people use them with:
 * curl as a SOCKS client (its exit code and message for each refusal), and
 * OpenSSH reaching a private sshd through `connect -W` as its
 * ProxyCommand (a command, and an scp checked by hash).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/fs.js';
import { muxtunBin, startConnect, startServe } from '../support/muxtun.js';
import { closedPort, freePort, serveOnLoopback, sha256 } from '../support/net.js';
import { baseEnv } from '../support/process.js';
import { requirePrograms, skipWithout, SSHD, startSshd } from '../support/real-programs.js';
import { Scope } from '../support/scope.js';

const run = promisify(execFile);

/** Runs a program to its end (bounded), returning its exit code and output instead of throwing on a non-zero exit. */
async function runProgram(command: string, args: string[], env: NodeJS.ProcessEnv = baseEnv(), timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(error) };
  }
}

async function helloServer(scope: Scope): Promise<number> {
  const server = await serveOnLoopback(http.createServer((_, res) => res.end('hello through SOCKS\n')), undefined, scope);
  return server.port;
}

const curl = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => runProgram('curl', ['-sS', '--max-time', '15', ...args]);

describe.skipIf(skipWithout(['curl']))('curl through -D and reverse dynamic -R', () => {
  beforeAll(() => requirePrograms(['curl']));

  it.concurrent('curl --socks5-hostname, --socks5, --socks4a and --socks4 through -D reach an HTTP server', async (context) => {
    const scope = new Scope(context);
    const web = await helloServer(scope);
    const server = await startServe({ scope });
    const socksPort = await freePort();
    await startConnect(server, { scope, dynamic: [String(socksPort)] });
    for (const [flag, host] of [['--socks5-hostname', 'localhost'], ['--socks5', '127.0.0.1'], ['--socks4a', 'localhost'], ['--socks4', '127.0.0.1']] as const) {
      const result = await curl([flag, `127.0.0.1:${socksPort}`, `http://${host}:${web}/`]);
      expect(result, `${flag}: ${result.stderr}`).toMatchObject({ code: 0, stdout: 'hello through SOCKS\n' });
    }
  });

  it.concurrent('a policy refusal and a closed port give curl the right SOCKS5 error', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope, args: ['--allow-local', '127.0.0.1:*'] });
    const socksPort = await freePort();
    await startConnect(server, { scope, dynamic: [String(socksPort)] });
    const policy = await curl(['--socks5-hostname', `127.0.0.1:${socksPort}`, 'http://localhost:80/']);
    // curl 97: CURLE_PROXY; the reply code is in brackets: 2 "not allowed by ruleset", 5 "connection refused".
    expect(policy.code).toBe(97);
    expect(policy.stderr).toMatch(/Can't complete SOCKS5 connection to localhost\. \(2\)/);
    const closed = await curl(['--socks5-hostname', `127.0.0.1:${socksPort}`, `http://127.0.0.1:${await closedPort()}/`]);
    expect(closed.code).toBe(97);
    expect(closed.stderr).toMatch(/Can't complete SOCKS5 connection to 127\.0\.0\.1\. \(5\)/);
  });

  it.concurrent('curl --socks5-hostname at the server\'s reverse dynamic port reaches a service only the client side reaches; --allow-target refuses the rest', async (context) => {
    const scope = new Scope(context);
    const web = await helloServer(scope);
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, remote: ['127.0.0.1:0'], args: ['--allow-target', `localhost:${web}`] });
    const port = client.remotePorts[0]!;
    const ok = await curl(['--socks5-hostname', `127.0.0.1:${port}`, `http://localhost:${web}/`]);
    expect(ok, ok.stderr).toMatchObject({ code: 0, stdout: 'hello through SOCKS\n' });
    const refused = await curl(['--socks5-hostname', `127.0.0.1:${port}`, `http://127.0.0.1:${web}/`]);
    expect(refused.code).toBe(97);
    expect(refused.stderr).toMatch(/\(2\)/);
  });
});

describe.skipIf(skipWithout(['ssh', 'scp', 'ssh-keygen', SSHD]))('ssh with ProxyCommand="muxtun connect … -W %h:%p"', () => {
  beforeAll(() => requirePrograms(['ssh', 'scp', 'ssh-keygen', SSHD]));

  it.concurrent.for([[''], ['--no-resume']] as const)('runs a command and copies a few MiB with scp, verified by hash %s', { timeout: 60_000 }, async ([mode], context) => {
    const scope = new Scope(context);
    const sshd = await startSshd(scope);
    const server = await startServe({ scope });
    const proxy = `${process.execPath} ${muxtunBin} connect 127.0.0.1:${server.port} --fingerprint ${server.fingerprint} ${mode} -W %h:%p`;
    const env = baseEnv({ MUXTUN_TOKEN: server.token });
    const ssh = [...sshd.sshArgs, '-o', `ProxyCommand=${proxy}`];

    const hello = await runProgram('ssh', [...ssh, '-p', String(sshd.port), 'root@127.0.0.1', 'echo', 'hello from sshd'], env);
    expect(hello, hello.stderr).toMatchObject({ code: 0, stdout: 'hello from sshd\n' });

    const dir = await tempDir('muxtun-scp-', scope);
    const data = randomBytes(4 * 1024 * 1024);
    writeFileSync(join(dir, 'in.bin'), data);
    const copy = await runProgram('scp', [...ssh, '-P', String(sshd.port), join(dir, 'in.bin'), `root@127.0.0.1:${join(dir, 'out.bin')}`], env, 60_000);
    expect(copy.code, copy.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'out.bin')))).toBe(sha256(data));
  });
});
