/**
 * Stream mode of the WebSocket transport, in process on loopback: the
 * client's dial against the real listener and against scripted peers.
 * TLS runs over what each side hands on, as connect and serve run it: the
 * bytes arrive intact, bytes that came with the 101 reach TLS (the unshift
 * path), a server without stream mode is named, and the listener refuses
 * bad upgrades and slow clients without stopping serving others.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { TransportError, TransportErrorCode, WebSocketListener, type WebSocketConnection } from '../../src/transport/index.js';
import { readExactly } from '../../src/transport/read-exactly.js';
import { dialWebSocket } from '../../src/transport/websocket-client.js';
import { isStreamFrameHeader, streamFrameHeader, webSocketAccept } from '../../src/transport/websocket-frame.js';
import { hex, patternBytes } from '../support/bytes.js';
import { connectionEnd, listen, readBytes, sha256, socketPair } from '../support/net.js';
import { track } from '../support/scope.js';
import { testCertificate } from '../support/tunnel.js';
import { rejection, waitUntil, within } from '../support/wait.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const STREAM_REQUEST = `GET /muxtun HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nX-Muxtun-Transport: stream\r\n\r\n`;

interface Listening {
  port: number;
  url: URL;
  /** The next connection the listener hands on. */
  next(): Promise<WebSocketConnection>;
  refusals: string[];
}

async function startListener(requestTimeoutMs = 5_000): Promise<Listening> {
  const accepted: WebSocketConnection[] = [];
  const refusals: string[] = [];
  const listener = new WebSocketListener({
    host: '127.0.0.1',
    port: 0,
    path: '/muxtun',
    requestTimeoutMs,
    onConnection: (connection) => {
      track(connection.stream);
      accepted.push(connection);
    },
    onRefused: ({ why }) => refusals.push(why),
  });
  const { port } = await listener.listen();
  track({ destroy: () => void listener.close() });
  return {
    port,
    url: new URL(`ws://127.0.0.1:${port}/muxtun`),
    next: () => waitUntil('the listener to hand on a connection', () => accepted.shift()),
    refusals,
  };
}

function dial(url: URL, mode: 'stream' | 'messages' = 'stream', timeoutMs = 5_000): Promise<Duplex> {
  return dialWebSocket(url, undefined, AbortSignal.timeout(timeoutMs), mode).then((stream) => track(stream));
}

/** TLS over the two streams, server side as serve runs it (`new TLSSocket(stream)`), client side as connect does (`tls.connect({ socket })`). */
async function tlsOver(clientStream: Duplex, serverStream: Duplex): Promise<[tls.TLSSocket, tls.TLSSocket]> {
  const { cert, key } = await testCertificate();
  const server = track(new tls.TLSSocket(serverStream, { isServer: true, secureContext: tls.createSecureContext({ cert, key }) }));
  const client = track(tls.connect({ socket: clientStream, rejectUnauthorized: false, minVersion: 'TLSv1.3' }));
  await within(Promise.all([once(server, 'secure'), once(client, 'secureConnect')]), 5_000, 'the TLS handshake');
  return [client, server];
}


/** Sends `size` bytes each way at once and checks both arrive intact. */
async function exchange(a: Duplex, b: Duplex, size: number): Promise<void> {
  const up = patternBytes(size, 1);
  const down = patternBytes(size + 17, 2);
  const arrivedUp = readBytes(b, up.length);
  const arrivedDown = readBytes(a, down.length);
  a.write(up);
  b.write(down);
  expect(sha256(await within(arrivedUp, 20_000, 'the bytes up'))).toBe(sha256(up));
  expect(sha256(await within(arrivedDown, 20_000, 'the bytes down'))).toBe(sha256(down));
}

/** A raw connection to `port` that sent `request`: what came back, and whether it closed. */
async function rawUpgrade(port: number, request: string | Buffer): Promise<net.Socket> {
  const socket = track(net.connect({ host: '127.0.0.1', port }));
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(request);
  return socket;
}

/** Everything `socket` sends until it closes (within 5 s). */
function untilClose(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return within(
    new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks)))),
    5_000,
    'the listener to close the connection',
  );
}

describe('stream-mode frame headers', () => {
  it('are one final binary frame of the largest length, the client masked with the zero key', () => {
    expect(streamFrameHeader(false)).toEqual(hex('827f 7fffffffffffffff'));
    expect(streamFrameHeader(true)).toEqual(hex('82ff 7fffffffffffffff 00000000'));
    expect(isStreamFrameHeader(hex('82ff 7fffffffffffffff 00000000'), true)).toBe(true);
    // Another mask key would change every payload byte; a text frame is not ours.
    expect(isStreamFrameHeader(hex('82ff 7fffffffffffffff 00000001'), true)).toBe(false);
    expect(isStreamFrameHeader(hex('817f 7fffffffffffffff'), false)).toBe(false);
  });

  it('accepts with the value of RFC 6455 1.3', () => {
    expect(webSocketAccept(KEY)).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });
});

describe('readExactly', () => {
  it('takes the header split anywhere between head and socket reads, and leaves what follows for the next reader', async () => {
    const header = streamFrameHeader(true);
    const after = Buffer.from('then the TLS bytes');
    const wire = Buffer.concat([header, after]);
    for (let split = 0; split <= header.length; split++) {
      const [a, b] = await socketPair();
      track(a);
      track(b);
      const reading = readExactly(b, header.length, wire.subarray(0, split), AbortSignal.timeout(5_000));
      // The rest in two writes, the second arriving after the first was read.
      a.write(wire.subarray(split, split + 3));
      await new Promise((resolve) => setImmediate(resolve));
      a.write(wire.subarray(split + 3));
      expect(await reading).toEqual(header);
      expect(b.isPaused()).toBe(true);
      expect(b.listenerCount('data')).toBe(0);
      const rest = readBytes(b, after.length);
      b.resume();
      expect(await within(rest, 5_000, 'the bytes after the header')).toEqual(after);
    }
  });

  it('resolves undefined when the peer closes first, and rejects with the reason when the signal aborts', async () => {
    const [a, b] = await socketPair();
    track(b);
    const reading = readExactly(b, 10, Buffer.alloc(0), AbortSignal.timeout(5_000));
    a.end(Buffer.from('short'));
    expect(await reading).toBeUndefined();

    const [c, d] = await socketPair();
    track(c);
    track(d);
    const controller = new AbortController();
    const waiting = readExactly(d, 10, Buffer.alloc(0), controller.signal);
    controller.abort(new Error('given up'));
    expect(await rejection(waiting)).toMatchObject({ message: 'given up' });
  });
});

describe('stream mode, client and listener', () => {
  it('hands both ends a net.Socket that TLS runs on, with the bytes intact both ways', async () => {
    const listening = await startListener();
    const clientStream = await dial(listening.url);
    const { stream: serverStream } = await listening.next();
    // A net.Socket (with its handle) is what Node's TLS wraps natively, without a JavaScript stream in between.
    expect(clientStream).toBeInstanceOf(net.Socket);
    expect(serverStream).toBeInstanceOf(net.Socket);
    const [client, server] = await tlsOver(clientStream, serverStream);
    // Natively: no TLS byte passes through the sockets' JavaScript side (over a JavaScript stream, every one would).
    let throughJs = 0;
    for (const raw of [clientStream, serverStream]) raw.on('data', (chunk: Buffer) => (throughJs += chunk.length));
    await exchange(client, server, 4 * 1024 * 1024);
    expect(throughJs).toBe(0);
    // Closing is TLS close and a FIN: the other end sees its TLS socket close.
    client.end();
    server.resume();
    await within(once(server, 'close'), 5_000, "the server's TLS socket to close");
  });

  it('passes bytes that came in the same packet as the 101 on to TLS (the unshift path)', async () => {
    const { cert, key } = await testCertificate();
    // A scripted server: its TLS is the client here, so that TLS bytes (the
    // ClientHello) can go out in the very write that carries the 101 and the frame header.
    const scripted = await listen((raw) => {
      raw.once('data', (request: Buffer) => {
        const clientKey = /sec-websocket-key: *(\S+)/i.exec(request.toString('latin1'))?.[1] ?? '';
        const answer = Buffer.concat([
          Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${webSocketAccept(clientKey)}\r\nX-Muxtun-Transport: stream\r\n\r\n`),
          streamFrameHeader(false),
        ]);
        let first = true;
        const bridge = new Duplex({
          read() {},
          write(chunk: Buffer, _encoding, callback) {
            raw.write(first ? Buffer.concat([answer, chunk]) : chunk, callback);
            first = false;
          },
        });
        let skip = 14;
        raw.on('data', (chunk: Buffer) => {
          const body = chunk.subarray(Math.min(skip, chunk.length));
          skip -= chunk.length - body.length;
          if (body.length > 0) bridge.push(body);
        });
        const tlsClient = track(tls.connect({ socket: bridge, rejectUnauthorized: false }));
        tlsClient.on('error', () => undefined);
        tlsClient.pipe(tlsClient);
      });
    });
    const stream = await dial(new URL(`ws://127.0.0.1:${scripted.port}/muxtun`));
    const server = track(new tls.TLSSocket(stream, { isServer: true, secureContext: tls.createSecureContext({ cert, key }) }));
    await within(once(server, 'secure'), 5_000, 'the handshake started by bytes that came with the 101');
    const data = patternBytes(256 * 1024, 5);
    const echoed = readBytes(server, data.length);
    server.write(data);
    expect(sha256(await within(echoed, 10_000, 'the echo'))).toBe(sha256(data));
  });

  it('goes through the proxy when one is given', async () => {
    const listening = await startListener();
    const requests: string[] = [];
    // A minimal HTTP CONNECT proxy.
    const proxy = await listen((client) =>
      client.once('data', (request: Buffer) => {
        requests.push(request.toString('latin1').split('\r\n')[0]!);
        const upstream = track(net.connect({ host: '127.0.0.1', port: listening.port }, () => {
          client.write('HTTP/1.1 200 Connection established\r\n\r\n');
          client.pipe(upstream).pipe(client);
        }));
        upstream.on('error', () => client.destroy());
      }),
    );
    const clientStream = await dialWebSocket(listening.url, { protocol: 'http', host: '127.0.0.1', port: proxy.port }, AbortSignal.timeout(5_000), 'stream');
    track(clientStream);
    expect(requests).toEqual([`CONNECT 127.0.0.1:${listening.port} HTTP/1.1`]);
    const [client, server] = await tlsOver(clientStream, (await listening.next()).stream);
    await exchange(client, server, 256 * 1024);
  });

  it('fails with a clear error against a server without stream mode (plain ws, as muxtun before it)', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    track({ destroy: () => wss.close() });
    await once(wss, 'listening');
    const { port } = wss.address() as net.AddressInfo;
    const error = await rejection(dial(new URL(`ws://127.0.0.1:${port}/muxtun`)));
    expect(error).toBeInstanceOf(TransportError);
    expect(error.code).toBe(TransportErrorCode.WEBSOCKET);
    expect(error.message).toContain('not stream mode');
    expect(error.message).toContain('--ws-mode messages');
  });

  it('keeps the wording of a refused upgrade for a wrong path', async () => {
    const listening = await startListener();
    const error = await rejection(dial(new URL(`ws://127.0.0.1:${listening.port}/wrong`)));
    expect(error.code).toBe(TransportErrorCode.WEBSOCKET);
    expect(error.message).toContain('HTTP 404');
    expect(error.message).toContain('pass WebSocket upgrades');
  });

  it('says a proxy may be holding the frame back when the server header never comes', async () => {
    const silent = await listen((raw) =>
      raw.once('data', (request: Buffer) => {
        const clientKey = /sec-websocket-key: *(\S+)/i.exec(request.toString('latin1'))?.[1] ?? '';
        raw.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${webSocketAccept(clientKey)}\r\nX-Muxtun-Transport: stream\r\n\r\n`);
      }),
    );
    const controller = new AbortController();
    const dialling = dialWebSocket(new URL(`ws://127.0.0.1:${silent.port}/muxtun`), undefined, controller.signal, 'stream');
    await waitUntil('the upgrade', () => silent.connections.length > 0);
    setTimeout(() => controller.abort(new TransportError(TransportErrorCode.CONNECT_TIMEOUT, 'Timed out after 300 ms')), 300);
    const error = await rejection(dialling);
    expect(error.code).toBe(TransportErrorCode.CONNECT_TIMEOUT);
    expect(error.message).toContain('frame header never came');
    expect(error.message).toContain('--ws-mode messages');
  });

  it('refuses a bad frame header and an upgrade without Sec-WebSocket-Key, and goes on serving', async () => {
    const listening = await startListener();
    const noKey = await rawUpgrade(listening.port, STREAM_REQUEST.replace(/Sec-WebSocket-Key: .*\r\n/, ''));
    expect((await untilClose(noKey)).toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);

    const badHeader = await rawUpgrade(listening.port, STREAM_REQUEST);
    const answer = untilClose(badHeader);
    // A masked header with a non-zero key: its payload would be masked.
    badHeader.write(hex('82ff 7fffffffffffffff 01020304'));
    const got = await answer;
    expect(got.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
    expect(got.subarray(-10)).toEqual(streamFrameHeader(false));
    expect(listening.refusals).toEqual([expect.stringContaining('Sec-WebSocket-Key'), expect.stringContaining('not the stream-mode frame header')]);

    const [client, server] = await tlsOver(await dial(listening.url), (await listening.next()).stream);
    await exchange(client, server, 64 * 1024);
  });

  it('drops a client that never sends its frame header after requestTimeoutMs', async () => {
    const listening = await startListener(300);
    const slow = await rawUpgrade(listening.port, STREAM_REQUEST);
    const started = Date.now();
    expect(await connectionEnd(slow, 5_000)).not.toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(listening.refusals).toEqual([expect.stringContaining('no stream-mode frame header within 300 ms')]);
  });

  it('still serves a messages-mode client on the same listener', async () => {
    const listening = await startListener();
    const clientStream = await dial(listening.url, 'messages');
    const { stream: serverStream } = await listening.next();
    expect(serverStream).not.toBeInstanceOf(net.Socket);
    const [client, server] = await tlsOver(clientStream, serverStream);
    await exchange(client, server, 1024 * 1024);
  });
});
