/**
 * Reloading a running serve (issue 14): SIGHUP, or a change to its config
 * or users file, applies the new configuration without disturbing what it
 * still allows. Real processes: serve with --config and --users, connect
 * clients of two users, `muxtun users remove` as the operator runs it.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMuxtun, spawnMuxtun, startConnect, startServe } from '../support/muxtun.js';
import { dial, echoServer, EchoClient, expectEcho, freePort, hashExchange, hashServer } from '../support/net.js';
import { tempDir } from '../support/fs.js';

async function addUser(file: string, name: string): Promise<string> {
  const { exit, stdout, stderr } = await runMuxtun(['users', 'add', name, '--users', file]);
  if (exit.code !== 0) throw new Error(`users add ${name} failed: ${stderr}`);
  return stdout.trim();
}

const serveToml = (lines: string[]): string => ['users = "users.toml"', 'host = "127.0.0.1"', ...lines, ''].join('\n');

describe('serve reloads its config and users files', () => {
  it('ends only what the new files no longer allow; a bad file changes nothing', { timeout: 60_000 }, async () => {
    const dir = await tempDir('muxtun-reload-');
    const users = join(dir, 'users.toml');
    const config = join(dir, 'serve.toml');
    const alice = await addUser(users, 'alice');
    const bob = await addUser(users, 'bob');
    const [kept, dropped] = [await freePort(), await freePort()];
    const allow = (ports: number[]): string => `allow-remote = [${ports.map((p) => `"${p}"`).join(', ')}]`;
    await writeFile(config, serveToml(['port = 0', allow([kept, dropped])]));
    await chmod(config, 0o600);

    const serve = spawnMuxtun(['serve', '--config', config, '--state-dir', join(dir, 'state'), '--log-format', 'json', '--log-level', 'debug'], { name: 'serve' });
    // With --users there is no token line.
    const port = Number(await serve.waitForStdout('the "listening on" line', (line) => /^muxtun server listening on .*:(\d+)$/.exec(line)?.[1]));
    const fingerprint = await serve.waitForStdout('the fingerprint line', (line) => /^fingerprint: (sha256:[0-9a-f]{64})/.exec(line)?.[1]);
    const server = { port, fingerprint };

    const echo = await echoServer();
    const bulk = await hashServer(64 * 1024 * 1024);
    const [aliceEcho, aliceBulk, bobEcho] = [await freePort(), await freePort(), await freePort()];
    const aliceConnect = await startConnect(
      { ...server, token: alice },
      { local: [`${aliceEcho}:127.0.0.1:${echo.port}`, `${aliceBulk}:127.0.0.1:${bulk.port}`], remote: [`${kept}:127.0.0.1:${echo.port}`, `${dropped}:127.0.0.1:${echo.port}`] },
    );
    const bobConnect = await startConnect({ ...server, token: bob }, { local: [`${bobEcho}:127.0.0.1:${echo.port}`] });
    // Connections that must live through every reload below.
    const aliceOpen = await EchoClient.connect(aliceEcho);
    const onKept = await EchoClient.connect(kept);
    const onDropped = await EchoClient.connect(dropped);
    await aliceOpen.roundTrip('before');

    // 1. A users file that does not parse: logged, nothing changes.
    const goodUsers = await import('node:fs/promises').then((fs) => fs.readFile(users, 'utf8'));
    await writeFile(users, `${goodUsers}\n[users.carol\n`);
    const rejected = await serve.waitForLog(/configuration NOT reloaded/, { timeoutMs: 10_000 });
    expect(String(rejected.error)).toContain(`${users}:`);
    await aliceOpen.roundTrip('after a bad file');
    await writeFile(users, goodUsers);

    // 2. The operator removes bob and sends SIGHUP: his connect exits 1 saying why; alice's 64 MiB transfer and connections go on.
    const transfer = hashExchange(aliceBulk, 64 * 1024 * 1024, 40_000);
    const removed = await runMuxtun(['users', 'remove', 'bob', '--users', users]);
    expect(removed.exit.code).toBe(0);
    serve.signal('SIGHUP');
    const bobExit = await bobConnect.process.waitForExit(15_000);
    expect(bobExit.code).toBe(1);
    expect(bobConnect.process.stderr.join('\n')).toMatch(/access revoked/);
    await transfer;
    await aliceOpen.roundTrip('after bob went');

    // 3. allow-remote narrowed (by SIGHUP this time): that -R listener closes and alice hears which;
    //    its open connection finishes, everything else is untouched.
    await writeFile(config, serveToml(['port = 0', allow([kept])]));
    serve.signal('SIGHUP');
    const closed = await aliceConnect.process.waitForLog(/^the server closed -R/, { timeoutMs: 10_000 });
    expect(closed.forward).toContain(`:${dropped}`);
    await expect(dial(dropped)).rejects.toThrow(/ECONNREFUSED/);
    await onDropped.roundTrip('an open connection on a closed listener finishes');
    await onKept.roundTrip('the other -R is untouched');
    await aliceOpen.roundTrip('and so is -L');

    // 4. A new port needs a restart: said, not done.
    await writeFile(config, serveToml(['port = 1', allow([kept])]));
    serve.signal('SIGHUP');
    const restart = await serve.waitForLog(/changed but not applied/, { timeoutMs: 10_000 });
    expect(restart.settings).toContain('port');
    await aliceOpen.roundTrip('after a change that needs a restart');

    // One session from start to end: nothing reconnected.
    expect(aliceConnect.process.logs().filter((entry) => entry.msg === 'connected' || entry.msg === 'reconnected')).toHaveLength(1);
    expect(aliceConnect.process.alive).toBe(true);
  });
});

describe('connect reloads its config file on SIGHUP', () => {
  it('starts added forwards and stops removed ones while a transfer runs on another, without reconnecting', { timeout: 60_000 }, async () => {
    const serve = await startServe();
    const dir = await tempDir('muxtun-reload-connect-');
    const config = join(dir, 'connect.toml');
    const echo = await echoServer();
    const bulk = await hashServer(16 * 1024 * 1024);
    const [bulkPort, addedLocal, removedRemote, addedRemote] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const toml = (local: string[], remote: string[]): string =>
      [`server = "127.0.0.1:${serve.port}"`, `fingerprint = "${serve.fingerprint}"`, `local = [${local.map((x) => `"${x}"`).join(', ')}]`, `remote = [${remote.map((x) => `"${x}"`).join(', ')}]`, ''].join('\n');
    await writeFile(config, toml([`${bulkPort}:127.0.0.1:${bulk.port}`], [`${removedRemote}:127.0.0.1:${echo.port}`]));
    const connect = spawnMuxtun(['connect', '--config', config, '--log-format', 'json', '--log-level', 'debug'], { name: 'connect', env: { MUXTUN_TOKEN: serve.token } });
    await connect.waitForLog('connected', { timeoutMs: 15_000 });
    const onRemoved = await EchoClient.connect(removedRemote);
    await onRemoved.roundTrip('before');

    const transfer = hashExchange(bulkPort, 16 * 1024 * 1024, 30_000);
    await writeFile(config, toml([`${bulkPort}:127.0.0.1:${bulk.port}`, `${addedLocal}:127.0.0.1:${echo.port}`], [`${addedRemote}:127.0.0.1:${echo.port}`]));
    connect.signal('SIGHUP');
    const reloaded = await connect.waitForLog('configuration reloaded', { timeoutMs: 10_000 });
    expect({ added: reloaded.added, removed: reloaded.removed, unchanged: reloaded.unchanged }).toEqual({ added: 2, removed: 1, unchanged: 1 });
    await expectEcho(addedLocal);
    await expectEcho(addedRemote);
    await expect(dial(removedRemote)).rejects.toThrow(/ECONNREFUSED/);
    await onRemoved.roundTrip('a connection made before the removal finishes');
    await transfer;

    // A file that does not parse changes nothing.
    await writeFile(config, 'local = [\n');
    connect.signal('SIGHUP');
    await connect.waitForLog(/configuration NOT reloaded/, { timeoutMs: 10_000 });
    await expectEcho(addedLocal);

    expect(connect.logs().filter((entry) => entry.msg === 'connected' || entry.msg === 'reconnected')).toHaveLength(1);
    expect(connect.alive).toBe(true);
  });
});
