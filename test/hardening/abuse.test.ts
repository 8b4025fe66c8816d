/**
 * The tunnel protocol misused on purpose, by a hand-driven client against the
 * real `serve` and by a fake server against the real `connect`: each misuse
 * is refused with a reason the other side and the logs can show.
 */
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { ErrorCode, server as muxadoServer, type Session, type Stream } from '../../src/muxado/index.js';
import { startConnect, startServe, type Serve } from '../support/muxtun.js';
import { connectionEnd, dial, echoServer, expectEcho, freePort } from '../support/net.js';
import { ControlReader, authenticatedSession, controlMessage, rawSession, sendHello, streamEnd, testCertificate } from '../support/tunnel.js';
import { within } from '../support/wait.js';

const hello = (serve: Serve, extra: object = {}): object => ({ type: 'hello', version: 1, token: serve.token, clientId: randomUUID(), ...extra });

describe('handshake abuse', () => {
  it('refuses another protocol version, saying which it speaks', async () => {
    const serve = await startServe();
    const { session } = await rawSession(serve.port);
    const { reader } = sendHello(session, hello(serve, { version: 2 }));
    const error = await reader.next('error');
    expect(error).toMatchObject({ code: 'ERR_MUXTUN_VERSION', message: 'this server speaks tunnel protocol version 1, the client 2' });
    await within(session.closed, 5_000, 'the session to end');
    await serve.process.waitForLog(/this server speaks tunnel protocol version 1/);
  });

  it('ends the session on hello twice, on a server message from a client, on listen before hello, on invalid JSON', async () => {
    const serve = await startServe();
    const cases: Array<{ send: Array<object | Buffer>; reason: RegExp }> = [
      { send: [hello(serve), hello(serve)], reason: /hello sent twice/ },
      { send: [hello(serve), { type: 'welcome', version: 1, sessionId: 'x' }], reason: /a client may not send "welcome"/ },
      { send: [{ type: 'listen', id: 0, bindHost: '127.0.0.1', port: 0 }], reason: /"listen" before hello/ },
      { send: [Buffer.from('{"type":"hello",')], reason: /not valid JSON/ },
      { send: [{ type: 'shutdown-everything' }], reason: /unknown control message type "shutdown-everything"/ },
      { send: [hello(serve, { token: 42 })], reason: /hello.token must be a string/ },
    ];
    for (const { send, reason } of cases) {
      const { session } = await rawSession(serve.port);
      const control = session.open({ type: 1 });
      const reader = new ControlReader(control);
      for (const message of send) control.write(controlMessage(message));
      const error = await reader.next('error');
      expect(String(error.message)).toMatch(reason);
      expect(error.code).toBe('ERR_MUXTUN_PROTOCOL');
      await within(session.closed, 5_000, `the session to end after ${reason}`);
      await serve.process.waitForLog((l) => reason.test(l.msg));
    }
    expect(serve.process.alive).toBe(true);
  });
});

describe('streams a client may not open', () => {
  it('refuses every stream before authentication, and after it every type but LOCAL_FORWARD', async () => {
    const echo = await echoServer();
    const serve = await startServe();

    // Before hello: a forward stream is refused, the session stays to authenticate.
    const early = await rawSession(serve.port);
    const sneaky = early.session.open({ type: 2 });
    sneaky.write(Buffer.from([0, 2, 0x7b, 0x7d]));
    expect(await streamEnd(sneaky)).toEqual({ reset: ErrorCode.REFUSED_STREAM });
    await serve.process.waitForLog('stream before authentication; refusing');

    const { session } = await authenticatedSession(serve);
    for (const type of [3, 1, 0, 7, 0xfffffefe]) {
      const mark = serve.process.mark();
      const stream = session.open({ type });
      stream.write('x');
      expect(await streamEnd(stream), `stream type ${type}`).toEqual({ reset: ErrorCode.REFUSED_STREAM });
      const log = await serve.process.waitForLog('stream of a type a client may not open; refusing', { after: mark });
      expect(log.streamType).toBe(type);
    }
    // The session itself is fine: a proper -L stream still works.
    const header = Buffer.from(JSON.stringify({ host: '127.0.0.1', port: echo.port }));
    const ok = session.open({ type: 2 });
    const length = Buffer.alloc(2);
    length.writeUInt16BE(header.length);
    const chunks: Buffer[] = [];
    ok.on('data', (chunk: Buffer) => chunks.push(chunk));
    ok.end(Buffer.concat([length, header, Buffer.from('still works')]));
    await within(once(ok, 'end'), 5_000, 'the echo on a proper -L stream');
    expect(Buffer.concat(chunks).toString()).toBe('still works');
  });

  it('resets a -L stream whose header is too long, not JSON, or not a target', async () => {
    const serve = await startServe();
    const { session } = await authenticatedSession(serve);
    const headers: Array<[Buffer, RegExp]> = [
      [Buffer.from([0x04, 0x01]), /stream header of 1025 bytes exceeds 1024/],
      [Buffer.concat([Buffer.from([0, 5]), Buffer.from('nope!')]), /not valid JSON/],
      [Buffer.concat([Buffer.from([0, 13]), Buffer.from('{"host":true}')]), /malformed -L stream header/],
    ];
    for (const [bytes, reason] of headers) {
      const mark = serve.process.mark();
      const stream = session.open({ type: 2 });
      stream.write(bytes);
      expect(await streamEnd(stream)).toEqual({ reset: ErrorCode.PROTOCOL_ERROR });
      await serve.process.waitForLog((l) => reason.test(`${l.msg} ${String(l.error ?? '')}`), { after: mark });
    }
  });
});

describe('policy', () => {
  it('refuses -R to a port outside --allow-remote and to a privileged port by default, telling connect why', async () => {
    const echo = await echoServer();
    const restricted = await startServe({ args: ['--allow-remote', '9000-9100'] });
    const outside = await startConnect(restricted, { remote: [`9200:127.0.0.1:${echo.port}`], wait: false, fastHeartbeat: true });
    const refusal = await outside.process.waitForLog((l) => l.code === 'ERR_MUXTUN_POLICY');
    expect(refusal.msg).toBe("the server's --allow-remote does not include port 9200 (allowed: 9000-9100)");
    expect((await outside.process.waitForExit()).code).toBe(1);
    expect(outside.process.stderr.join('\n')).toMatch(/could not be set up: the server's --allow-remote does not include port 9200.*\[ERR_MUXTUN_FORWARD_FAILED\]/);
    await restricted.process.waitForLog(/^refused -R: the server's --allow-remote does not include port 9200\b/);

    const open = await startServe();
    const privileged = await startConnect(open, { local: [`${await freePort()}:127.0.0.1:${echo.port}`], remote: [`80:127.0.0.1:${echo.port}`], fastHeartbeat: true, args: ['--keep-going'] });
    const log = await privileged.process.waitForLog((l) => l.code === 'ERR_MUXTUN_POLICY');
    expect(log.msg).toBe("the server's --allow-remote does not include port 80 (allowed: 1024-65535)");
    expect(privileged.process.alive).toBe(true);
  });

  it('refuses -L to a target outside --allow-local: the local connection is reset and connect logs the reason', async () => {
    const echo = await echoServer();
    const other = await echoServer();
    const serve = await startServe({ args: ['--allow-local', `127.0.0.1:${echo.port}`] });
    const allowedPort = await freePort();
    const forbiddenPort = await freePort();
    const connect = await startConnect(serve, { local: [`${allowedPort}:127.0.0.1:${echo.port}`, `${forbiddenPort}:127.0.0.1:${other.port}`], fastHeartbeat: true });

    const socket = await dial(forbiddenPort);
    socket.write('let me in');
    expect(await connectionEnd(socket, 5_000)).toBe('reset');
    const log = await connect.process.waitForLog(/^the server could not serve a -L connection/);
    expect(log.msg).toContain(`the server's --allow-local does not include 127.0.0.1:${other.port}`);
    await serve.process.waitForLog(new RegExp(`^refused -L: the server's --allow-local does not include 127\\.0\\.0\\.1:${other.port}\\b`));
    expect(other.connections).toHaveLength(0);
    await expectEcho(allowedPort);
  });
});

describe('a server that breaks the protocol', () => {
  /**
   * A fake muxtun server: the real engine, the real handshake, then whatever
   * the test makes it do. `connect` must refuse what a server may not send.
   */
  async function fakeServer(): Promise<{ port: number; fingerprint: string; sessions: Session[]; nextSession: () => Promise<{ session: Session; control: Stream; reader: ControlReader }>; close: () => void }> {
    const material = await testCertificate();
    const sessions: Session[] = [];
    const waiting: Array<(value: { session: Session; control: Stream; reader: ControlReader }) => void> = [];
    const ready: Array<{ session: Session; control: Stream; reader: ControlReader }> = [];
    const server = tls.createServer({ cert: material.cert, key: material.key, minVersion: 'TLSv1.3' }, (socket) => {
      socket.on('error', () => {});
      const session = muxadoServer(socket);
      sessions.push(session);
      session.on('stream', (control) => {
        const reader = new ControlReader(control);
        void reader.next('hello').then(() => {
          control.write(controlMessage({ type: 'welcome', version: 1, sessionId: 'fake' }));
          const entry = { session, control, reader };
          const waiter = waiting.shift();
          if (waiter) waiter(entry);
          else ready.push(entry);
        });
        // Answer every -R request as if it were bound.
        let answered = 0;
        control.on('data', () => {
          for (; answered < reader.messages.length; answered++) {
            const message = reader.messages[answered]!;
            if (message.type === 'listen') control.write(controlMessage({ type: 'listening', id: message.id, bindHost: message.bindHost, port: 40_000 }));
          }
        });
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const close = (): void => {
      for (const session of sessions) session.close();
      server.close();
    };
    return {
      port: (server.address() as { port: number }).port,
      fingerprint: material.fingerprint,
      sessions,
      nextSession: () => within(new Promise((resolve) => (ready.length > 0 ? resolve(ready.shift()!) : waiting.push(resolve))), 15_000, 'connect to finish the handshake with the fake server'),
      close,
    };
  }

  it('connect refuses a LOCAL_FORWARD stream opened by the server, a -R stream for a forward it never asked for, and a bad -R header', async () => {
    const echo = await echoServer();
    const fake = await fakeServer();
    try {
      const connect = await startConnect({ port: fake.port, token: 'any', fingerprint: fake.fingerprint }, { remote: [`0:127.0.0.1:${echo.port}`], wait: false, fastHeartbeat: true });
      const { session } = await fake.nextSession();
      await connect.process.waitForLog((l) => l.msg === 'connected');

      const local = session.open({ type: 2 });
      local.write(Buffer.concat([Buffer.from([0, 30]), Buffer.from(JSON.stringify({ host: '127.0.0.1', port: 22 }).padEnd(30))]));
      expect(await streamEnd(local)).toEqual({ reset: ErrorCode.REFUSED_STREAM });
      const log = await connect.process.waitForLog('the server opened a stream of a type it may not open; refusing');
      expect(log.streamType).toBe(2);

      const header = (value: object): Buffer => {
        const body = Buffer.from(JSON.stringify(value));
        const length = Buffer.alloc(2);
        length.writeUInt16BE(body.length);
        return Buffer.concat([length, body]);
      };
      const unasked = session.open({ type: 3 });
      unasked.write(header({ forward: 7, peer: '203.0.113.7:1' }));
      expect(await streamEnd(unasked)).toEqual({ reset: ErrorCode.REFUSED_STREAM });
      await connect.process.waitForLog('-R stream for a forward this client did not request; refusing');

      const garbled = session.open({ type: 3 });
      garbled.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
      expect(await streamEnd(garbled)).toEqual({ reset: ErrorCode.PROTOCOL_ERROR });
      await connect.process.waitForLog('bad stream header from the server; resetting the stream');

      // A proper -R stream still works: connect was not disturbed.
      const proper = session.open({ type: 3 });
      const chunks: Buffer[] = [];
      proper.on('data', (chunk: Buffer) => chunks.push(chunk));
      proper.end(Buffer.concat([header({ forward: 0, peer: '203.0.113.7:1' }), Buffer.from('echo me')]));
      await within(once(proper, 'end'), 5_000, 'the echo through connect');
      expect(Buffer.concat(chunks).toString()).toBe('echo me');
      expect(connect.process.alive).toBe(true);
    } finally {
      fake.close();
    }
  });

  it('connect drops a session whose control stream carries garbage, says so, and reconnects', async () => {
    const echo = await echoServer();
    const fake = await fakeServer();
    try {
      const connect = await startConnect({ port: fake.port, token: 'any', fingerprint: fake.fingerprint }, { local: [`${await freePort()}:127.0.0.1:${echo.port}`], wait: false, fastHeartbeat: true });
      const first = await fake.nextSession();
      await connect.process.waitForLog((l) => l.msg === 'connected');
      first.control.write(Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b]));
      await connect.process.waitForLog('the server sent a bad control message; reconnecting');
      await within(first.session.closed, 5_000, 'connect to close the bad session');
      await fake.nextSession();
      await connect.process.waitForLog('reconnected');
    } finally {
      fake.close();
    }
  });
});

describe('DYNAMIC streams (-D, -W) from a hand-driven client', () => {
  /** The first framed JSON the server writes on a stream (its dial result), and what follows it. */
  async function dialResult(stream: Stream): Promise<{ result: unknown; rest: Promise<Buffer> }> {
    let buffered = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let resolveRest: (b: Buffer) => void = () => {};
    const rest = new Promise<Buffer>((resolve) => (resolveRest = resolve));
    const result = await within(
      new Promise<unknown>((resolve) => {
        let parsed = false;
        stream.on('data', (chunk: Buffer) => {
          if (parsed) return void chunks.push(chunk);
          buffered = Buffer.concat([buffered, chunk]);
          if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
          parsed = true;
          const length = buffered.readUInt16BE(0);
          chunks.push(buffered.subarray(2 + length));
          resolve(JSON.parse(buffered.subarray(2, 2 + length).toString()));
        });
        stream.on('end', () => resolveRest(Buffer.concat(chunks)));
        stream.on('error', () => resolveRest(Buffer.concat(chunks)));
      }),
      10_000,
      'a dial result',
    );
    return { result, rest };
  }
  const frame = (value: object): Buffer => {
    const body = Buffer.from(JSON.stringify(value));
    return Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]);
  };

  it('answers with the dial result before any byte: ok then the target\'s bytes; refused then FIN; bad headers are reset', async () => {
    const echo = await echoServer();
    const serve = await startServe();
    const { session } = await authenticatedSession(serve);

    const ok = session.open({ type: 5 });
    ok.end(Buffer.concat([frame({ host: '127.0.0.1', port: echo.port }), Buffer.from('ping')]));
    const good = await dialResult(ok);
    expect(good.result).toEqual({ ok: true });
    expect((await within(good.rest, 5_000, 'the echo')).toString()).toBe('ping');

    const closed = session.open({ type: 5 });
    closed.write(frame({ host: '127.0.0.1', port: await freePort() }));
    const refused = await dialResult(closed);
    expect(refused.result).toMatchObject({ error: 'refused', message: expect.stringMatching(/ECONNREFUSED/) });
    closed.end();
    expect((await within(refused.rest, 5_000, 'FIN after the refusal')).length).toBe(0);

    for (const bad of [Buffer.from([0, 13, ...Buffer.from('{"host":true}')]), frame({ host: 'h', port: 80, conn: 1 })]) {
      const stream = session.open({ type: 5 });
      stream.write(bad);
      expect(await streamEnd(stream)).toEqual({ reset: ErrorCode.PROTOCOL_ERROR });
    }
    // The session is fine afterwards.
    const again = session.open({ type: 5 });
    again.end(Buffer.concat([frame({ host: 'localhost', port: echo.port }), Buffer.from('again')]));
    expect((await within((await dialResult(again)).rest, 5_000, 'the second echo')).toString()).toBe('again');
  });
});
