/**
 * Processes coming and going: the server dies or is stopped and comes back
 * (the client reconnects and gets its -R back), and SIGTERM drains open
 * connections before exiting 0.
 */
import { describe, expect, it } from 'vitest';
import { remotePort, startConnect, startServe } from '../support/muxtun.js';
import { converse, EchoClient, echoServer, exchange, freePort, relay } from '../support/net.js';
import { LogLevel } from '../support/process.js';
import { Scope } from '../support/scope.js';
import { within } from '../support/wait.js';

describe.concurrent('server restart', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`after ${signal} and a restart on the same port and state dir the client reconnects and its -R works again`, { timeout: 45_000 }, async (context) => {
      const scope = new Scope(context);
      const echo = await echoServer(scope);
      const first = await startServe({ scope, name: 'serve (first run)', args: ['--drain-timeout', '1'] });
      // A fixed -R port: a reconnect asks for the same spec again, and port 0 would get a new port.
      const [local, remote] = await Promise.all([freePort(), freePort()]);
      // --no-resume: the reconnect without resumption (resume.test.ts covers a restart with it).
      const client = await startConnect(first, { scope, local: [`${local}:127.0.0.1:${echo.port}`], remote: [`127.0.0.1:${remote}:127.0.0.1:${echo.port}`], args: ['--no-resume'] });
      expect((await exchange(local, 'before -L')).toString()).toBe('before -L');
      expect((await exchange(remote, 'before -R')).toString()).toBe('before -R');
      const [openLocal, openRemote] = await Promise.all([EchoClient.connect(local), EchoClient.connect(remote)]);
      expect((await openLocal.roundTrip('open -L')).toString()).toBe('open -L');
      expect((await openRemote.roundTrip('open -R')).toString()).toBe('open -R');

      const mark = client.process.mark();
      first.process.signal(signal);
      const exit = await first.process.waitForExit();
      if (signal === 'SIGTERM') expect(exit.code, first.process.tail()).toBe(0);
      await client.process.waitForLog('session to the server lost', { after: mark });
      await client.process.waitForLog(/^reconnecting in /, { after: mark });
      // Connections of the lost session end (reset), none is left hanging.
      await within(openLocal.ended, 10_000, `the open -L connection to end\n${client.process.tail()}`);
      // The -R one was accepted by the server process, so its end comes from there (the kernel's FIN after SIGKILL).
      await within(openRemote.ended, 10_000, `the open -R connection to end\n${first.process.tail()}`);
      if (signal === 'SIGKILL') expect(openLocal.error?.code).toBe('ECONNRESET');

      // The -L listener stays open while the server is away: connections are accepted, not refused.
      const whileDown = await EchoClient.connect(local);
      whileDown.destroy();

      const second = await startServe({ scope, name: 'serve (second run)', port: first.port, stateDir: first.stateDir });
      expect(second.fingerprint).toBe(first.fingerprint);
      // A connection made while the client is still reconnecting waits for the new session.
      const pending = exchange(local, 'during reconnect', 15_000);
      const reconnected = await client.process.waitForLog('reconnected', { after: mark, timeoutMs: 15_000 });
      expect(reconnected.level).toBe(LogLevel.info);
      await client.process.waitForLog('-R listening on the server', { after: mark, where: (entry) => String(entry.forward).includes(`:${remote} ->`) });
      expect((await pending).toString()).toBe('during reconnect');
      expect((await exchange(remote, 'after -R')).toString()).toBe('after -R');
      expect((await exchange(local, 'after -L')).toString()).toBe('after -L');
      await second.process.waitForLog('client authenticated');
      expect(client.process.exit).toBeUndefined();
    });
  }
});

describe.concurrent('a -R forward on any free port', () => {
  it('keeps the port the server picked when it reconnects after a restart', { timeout: 45_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const first = await startServe({ scope, name: 'serve (first run)' });
    const target = `127.0.0.1:${echo.port}`;
    const client = await startConnect(first, { scope, remote: [`127.0.0.1:0:${target}`] });
    const granted = remotePort(client, target);
    expect((await exchange(granted, 'before')).toString()).toBe('before');

    const mark = client.process.mark();
    first.process.signal('SIGKILL');
    await first.process.waitForExit();
    await startServe({ scope, name: 'serve (second run)', port: first.port, stateDir: first.stateDir });
    await client.process.waitForLog('reconnected', { after: mark, timeoutMs: 15_000 });
    await client.process.waitForLog('-R listening on the server', { after: mark, where: (entry) => String(entry.forward).includes(`:${granted} ->`) });
    expect((await exchange(granted, 'after')).toString()).toBe('after');
  });
});

describe.concurrent('a connection that goes silent', () => {
  it('the client notices by heartbeat, reconnects, and the server hands the -R port to the new session', { timeout: 45_000 }, async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const path = await relay(server.port, scope);
    const remote = await freePort();
    const client = await startConnect(server, {
      scope,
      port: path.port,
      remote: [`127.0.0.1:${remote}:127.0.0.1:${echo.port}`],
      // --no-resume: a fresh session replaces the old one (resume.test.ts covers the blackhole with resumption).
      args: ['--heartbeat-interval', '0.2', '--heartbeat-tolerance', '1', '--no-resume'],
    });
    expect((await exchange(remote, 'before')).toString()).toBe('before');

    const mark = client.process.mark();
    const serverMark = server.process.mark();
    path.blackhole();
    await client.process.waitForLog('session to the server lost', { after: mark });
    // The server has not noticed (its heartbeat is slower): the new session replaces the old one.
    await client.process.waitForLog('reconnected', { after: mark, timeoutMs: 15_000 });
    await server.process.waitForLog('closing client session', { after: serverMark, where: (entry) => entry.reason === 'replaced by a new session of the same client' });
    expect((await exchange(remote, 'after')).toString()).toBe('after');
  });
});

describe.concurrent('SIGTERM', () => {
  it('serve drains: open -L and -R connections keep working, new ones are refused, then serve exits 0', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope, args: ['--drain-timeout', '20'] });
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`], remote: [`127.0.0.1:0:127.0.0.1:${echo.port}`] });
    const remote = remotePort(client, `127.0.0.1:${echo.port}`);
    const open = await Promise.all([EchoClient.connect(local), EchoClient.connect(remote)]);
    for (const connection of open) expect((await connection.roundTrip('before')).toString()).toBe('before');

    server.process.signal('SIGTERM');
    await server.process.waitForLog(/^shutting down/);
    // Still served after the signal...
    for (const connection of open) {
      expect((await connection.roundTrip('during drain')).toString()).toBe('during drain');
      expect((await connection.roundTrip(Buffer.alloc(200_000, 1))).length).toBe(200_000);
    }
    // ...while new connections are not: the -R listener is closed and new -L streams are refused.
    expect((await converse(remote, 'new -R')).error?.code).toBe('ECONNREFUSED');
    const lateLocal = await converse(local, 'new -L');
    expect(lateLocal.received.length).toBe(0);
    expect(server.process.exit, server.process.tail()).toBeUndefined();

    // Closing the last connections ends the drain long before its 20 s limit
    // (an open -R connection once held it until it ended by itself).
    for (const connection of open) connection.socket.end();
    await Promise.all(open.map((connection) => connection.closed));
    const exit = await server.process.waitForExit(10_000);
    expect(exit.code, server.process.tail()).toBe(0);
    const stopped = server.process.logs().find((entry) => entry.msg === 'stopped');
    expect(stopped?.drained).toBe(true);
  });

  it('serve exits 0 at --drain-timeout even with an -R connection still open', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope, args: ['--drain-timeout', '0.5'] });
    const client = await startConnect(server, { scope, remote: [`127.0.0.1:0:127.0.0.1:${echo.port}`] });
    const open = await EchoClient.connect(remotePort(client, `127.0.0.1:${echo.port}`));
    expect((await open.roundTrip('hello')).toString()).toBe('hello');

    server.process.signal('SIGTERM');
    const exit = await server.process.waitForExit(10_000);
    expect(exit.code, server.process.tail()).toBe(0);
    expect(server.process.logs().find((entry) => entry.msg === 'stopped')?.drained).toBe(false);
    await within(open.ended, 5_000, 'the open -R connection to be cut');
  });

  it('serve cuts connections still open at --drain-timeout and exits 0', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope, args: ['--drain-timeout', '0.5'] });
    const local = await freePort();
    await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`] });
    const open = await EchoClient.connect(local);
    expect((await open.roundTrip('hello')).toString()).toBe('hello');

    server.process.signal('SIGTERM');
    const exit = await server.process.waitForExit(10_000);
    expect(exit.code, server.process.tail()).toBe(0);
    expect(server.process.logs().find((entry) => entry.msg === 'stopped')?.drained).toBe(false);
    await open.closed;
  });

  it('connect stops cleanly on SIGTERM: exit 0, -L port released', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`] });

    client.process.signal('SIGTERM');
    const exit = await client.process.waitForExit();
    expect(exit.code, client.process.tail()).toBe(0);
    await client.process.waitForLog('stopped');
    expect((await converse(local, 'anyone?')).error?.code).toBe('ECONNREFUSED');
    await server.process.waitForLog('client session ended');
  });

  it('connect stops cleanly on SIGTERM while it is reconnecting to a server that is gone', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    const local = await freePort();
    const client = await startConnect(server, { scope, local: [`${local}:127.0.0.1:9`] });
    await server.process.kill();
    await client.process.waitForLog(/^reconnect attempt failed/ );

    client.process.signal('SIGTERM');
    const exit = await client.process.waitForExit(5_000);
    expect(exit.code, client.process.tail()).toBe(0);
  });

  it('connect --no-reconnect exits 1 when the server goes away, saying the session was lost', async (context) => {
    const scope = new Scope(context);
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, local: [`${await freePort()}:127.0.0.1:9`], args: ['--no-reconnect'] });
    await server.process.kill();

    const exit = await client.process.waitForExit();
    expect(exit.code, client.process.tail()).toBe(1);
    expect(client.process.stderr.join('\n')).toMatch(/lost the session to the server/);
  });
});
