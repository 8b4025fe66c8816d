/**
 * Every limit of `muxtun serve`, hit on purpose against the real CLI: the
 * limit holds, the one who hit it is told (or dropped, for unauthenticated
 * floods), the server logs it, and everyone else carries on.
 */
import { once } from 'node:events';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startConnect, startServe } from '../support/muxtun.js';
import { connectionEnd, dial, echoOn, echoServer, expectEcho, freePort } from '../support/net.js';
import { RawWire, rawSession, sendHello } from '../support/tunnel.js';
import { waitUntil, within } from '../support/wait.js';

describe('handshake timeout', () => {
  it('closes a TLS connection that never sends hello after --handshake-timeout, and one that never starts TLS', async () => {
    const serve = await startServe({ args: ['--handshake-timeout', '0.5'] });

    const started = Date.now();
    const wire = await RawWire.to(serve.port);
    const raw = new net.Socket();
    raw.on('error', () => {});
    raw.connect(serve.port, '127.0.0.1');
    await once(raw, 'connect');
    await within(Promise.all([wire.closed, once(raw, 'close')]), 5_000, 'both silent connections to be closed');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(400);
    // The server said goodbye properly on the session it had.
    expect(wire.goAway()).toBeDefined();
    await serve.process.waitForLog('client did not authenticate in time; closing');
    await serve.process.waitForLog('TLS handshake failed');
    expect(serve.process.alive).toBe(true);
  });
});

describe('--max-unauthenticated', () => {
  it('drops connections beyond the limit, TLS handshakes in progress included, and takes new ones once others finish', async () => {
    const serve = await startServe({ args: ['--max-unauthenticated', '2', '--handshake-timeout', '10'] });

    // Two connections that finished TLS but never said hello.
    const first = await RawWire.to(serve.port);
    const second = await RawWire.to(serve.port);
    const mark = serve.process.mark();
    const third = net.connect(serve.port, '127.0.0.1');
    third.on('error', () => {});
    expect(await connectionEnd(third, 5_000)).not.toBe('timeout');
    await serve.process.waitForLog(/^too many unauthenticated connections/, { after: mark });

    // Once those leave, there is room again.
    first.socket.destroy();
    second.socket.destroy();
    await Promise.all([first.closed, second.closed]);
    const again = await within(RawWire.to(serve.port), 5_000, 'a TLS connection after the others left');

    // Plain TCP connections stuck before the TLS handshake count too: that is
    // where a flood costs the server the most.
    const stuck = await dial(serve.port);
    const mark2 = serve.process.mark();
    const dropped = net.connect(serve.port, '127.0.0.1');
    dropped.on('error', () => {});
    expect(await connectionEnd(dropped, 5_000)).not.toBe('timeout');
    await serve.process.waitForLog(/^too many unauthenticated connections/, { after: mark2 });
    expect(again.socket.destroyed).toBe(false);
    stuck.destroy();
    again.socket.destroy();
  });
});

describe('failed authentication', () => {
  it('answers later after each wrong token from the same address', async () => {
    const serve = await startServe();
    const attempt = async (): Promise<number> => {
      const { session } = await rawSession(serve.port, { localAddress: '127.0.0.5' });
      const started = Date.now();
      const { reader } = sendHello(session, { type: 'hello', version: 1, token: 'wrong', clientId: randomUUID() });
      const error = await reader.next('error', 10_000);
      expect(error.code).toBe('ERR_MUXTUN_AUTH');
      const elapsed = Date.now() - started;
      session.close();
      return elapsed;
    };
    const durations: number[] = [];
    for (let i = 0; i < 5; i++) durations.push(await attempt());
    // 0, then 0.1, 0.2, 0.4, 0.8 s: the fifth waits at least 0.8 s (minus timer slack).
    expect(durations[4]!).toBeGreaterThanOrEqual(750);
    expect(durations[4]!).toBeGreaterThan(durations[0]!);
    expect(durations[3]!).toBeGreaterThanOrEqual(350);
  });
});

describe('--max-streams', () => {
  it('refuses the stream beyond the limit: its local connection is reset, the refusal logged, the others undisturbed', async () => {
    const echo = await echoServer();
    const serve = await startServe({ args: ['--max-streams', '3'] });
    const lPort = await freePort();
    const connect = await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true });

    const open = [await dial(lPort), await dial(lPort), await dial(lPort)];
    for (const socket of open) await echoOn(socket);

    const mark = serve.process.mark();
    const extra = await dial(lPort);
    extra.write('hello?');
    expect(await connectionEnd(extra, 5_000)).toBe('reset');
    const refused = await serve.process.waitForLog(/^refused a stream/, { after: mark });
    expect(String(refused.reason)).toMatch(/maxStreams/);
    await connect.process.waitForLog(/^the server refused a -L connection \(REFUSED_STREAM\)/);

    // The three that were in keep working, and a closed one makes room.
    for (const socket of open) await echoOn(socket);
    // Closing one makes room once both tunnel ends saw it close.
    open[0]!.destroy();
    await waitUntil('a new -L connection to fit after one closed', () => expectEcho(lPort).then(() => true, () => false), 5_000, 100);
  });
});

describe('--max-remote-listeners', () => {
  it('refuses the -R forward beyond the limit with a clear error and keeps the others', async () => {
    const echo = await echoServer();
    const serve = await startServe({ args: ['--max-remote-listeners', '2'] });
    const connect = await startConnect(serve, { remote: [`0:127.0.0.1:${echo.port}`, `0:127.0.0.1:${echo.port}`, `0:127.0.0.1:${echo.port}`], fastHeartbeat: true, args: ['--keep-going'] });
    expect(connect.remotePorts).toHaveLength(2);
    const error = await connect.process.waitForLog((l) => l.level === 50 && /-R listeners/.test(l.msg));
    expect(error.code).toBe('ERR_MUXTUN_LIMIT');
    expect(error.msg).toMatch(/already holds 2 -R listeners/);
    await serve.process.waitForLog(/^refused -R/);
    for (const port of connect.remotePorts) await expectEcho(port);
  });
});

describe('--max-sessions', () => {
  it('tells the client beyond the limit that the server is full (exit 1 with --no-reconnect) and keeps the first', async () => {
    const echo = await echoServer();
    const serve = await startServe({ args: ['--max-sessions', '1'] });
    const lPort = await freePort();
    await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true });
    const second = await startConnect(serve, { local: [`${await freePort()}:127.0.0.1:${echo.port}`], wait: false, fastHeartbeat: true, args: ['--no-reconnect'] });
    const exit = await second.process.waitForExit(15_000);
    expect(exit.code).toBe(1);
    expect(second.process.stderr.join('\n')).toMatch(/the server is full: it holds its limit of 1 client sessions \[ERR_MUXTUN_LIMIT\]/);
    await expectEcho(lPort);
  });
});

describe('control message size', () => {
  it('ends the session of a client whose hello is larger than 16 KiB, saying why', async () => {
    const serve = await startServe();
    const { session } = await rawSession(serve.port);
    const { reader } = sendHello(session, { type: 'hello', version: 1, token: 'x'.repeat(20_000), clientId: 'big' });
    const error = await reader.next('error');
    expect(error.code).toBe('ERR_MUXTUN_PROTOCOL');
    expect(String(error.message)).toMatch(/control message of \d+ bytes exceeds the limit of 16384/);
    const end = await within(session.closed, 5_000, 'the session to end');
    expect(end.initiator).toBe('remote');
    await serve.process.waitForLog((l) => /exceeds the limit/.test(l.msg));
  });
});

describe('--idle-timeout', () => {
  it('resets a forwarded connection idle for longer than the timeout; a busy one lives on', async () => {
    const echo = await echoServer();
    const serve = await startServe({ args: ['--idle-timeout', '0.6'] });
    const lPort = await freePort();
    await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true });

    const idle = await dial(lPort);
    const busy = await dial(lPort);
    await echoOn(idle);
    const started = Date.now();
    const idleEnd = connectionEnd(idle, 6_000);
    // Keep the other one busy past the timeout.
    while (Date.now() - started < 1_500) {
      await echoOn(busy, 64);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(await idleEnd).toBe('reset');
    await serve.process.waitForLog('closing an idle forwarded connection');
    await echoOn(busy);
  });

  it('is off by default', async () => {
    const echo = await echoServer();
    const serve = await startServe();
    const lPort = await freePort();
    await startConnect(serve, { local: [`${lPort}:127.0.0.1:${echo.port}`], fastHeartbeat: true });
    const socket = await dial(lPort);
    await echoOn(socket);
    expect(await connectionEnd(socket, 1_500)).toBe('timeout');
    await echoOn(socket);
  });
});
