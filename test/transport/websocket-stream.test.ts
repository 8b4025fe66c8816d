/**
 * The byte stream over a WebSocket, between two real `ws` peers on
 * loopback: bytes arrive intact both ways, a write leaves as messages of at
 * most WS_MESSAGE_BYTES that the peer sees as ordinary binary messages,
 * a reader that stops reading stops the writer (nothing buffers without
 * bound), and a closed WebSocket closes the stream at the other end.
 */
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { frameHeader } from '../../src/transport/websocket-frame.js';
import { WS_MESSAGE_BYTES, webSocketByteStream } from '../../src/transport/websocket-stream.js';
import { patternBytes } from '../support/bytes.js';
import { readBytes, sha256 } from '../support/net.js';
import { waitUntil, within } from '../support/wait.js';

interface Pair {
  client: Duplex;
  server: Duplex;
  clientWs: WebSocket;
  serverWs: WebSocket;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A WebSocket pair on loopback as the transport makes them (zero mask on the client), each end wrapped as a byte stream. */
async function pair(): Promise<Pair> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  let serverSocket: Socket | undefined;
  const accepted = new Promise<WebSocket>((resolve) =>
    wss.on('connection', (ws, request) => {
      serverSocket = request.socket;
      resolve(ws);
    }),
  );
  const clientWs = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false, generateMask: (mask) => mask.fill(0) });
  let clientSocket: Socket | undefined;
  clientWs.once('upgrade', (response) => (clientSocket = response.socket));
  await within(once(clientWs, 'open'), 5_000, 'the WebSocket to open');
  const serverWs = await within(accepted, 5_000, 'the server to accept');
  const client = webSocketByteStream(clientWs, clientSocket!, { masked: true });
  const server = webSocketByteStream(serverWs, serverSocket!, { masked: false });
  cleanups.push(() => {
    client.destroy();
    server.destroy();
    clientWs.terminate();
    serverWs.terminate();
    wss.close();
  });
  return { client, server, clientWs, serverWs };
}


describe('webSocketByteStream', () => {
  it('carries large corked writes intact both ways, as messages of at most WS_MESSAGE_BYTES', async () => {
    const { client, server, clientWs, serverWs } = await pair();
    const sizes: number[] = [];
    serverWs.on('message', (data: Buffer) => sizes.push(data.length));
    clientWs.on('message', (data: Buffer) => sizes.push(data.length));
    const up = patternBytes(4 * 1024 * 1024 + 3, 1);
    const down = patternBytes(3 * 1024 * 1024 + 17, 2);
    const arrivedUp = readBytes(server, up.length);
    const arrivedDown = readBytes(client, down.length);
    // Corked writes of odd sizes reach _writev together, as TLS's do.
    for (const [stream, data] of [
      [client, up],
      [server, down],
    ] as const) {
      stream.cork();
      for (let offset = 0; offset < data.length; offset += 65_684) stream.write(data.subarray(offset, offset + 65_684));
      stream.uncork();
    }
    expect(sha256(await within(arrivedUp, 20_000, 'the client-to-server bytes'))).toBe(sha256(up));
    expect(sha256(await within(arrivedDown, 20_000, 'the server-to-client bytes'))).toBe(sha256(down));
    expect(Math.max(...sizes)).toBe(WS_MESSAGE_BYTES);
  });

  it('stops completing writes while the reader does not read, and delivers everything once it does', async () => {
    const { client, server } = await pair();
    server.pause();
    const chunk = patternBytes(256 * 1024, 3);
    let accepted = 0;
    const pump = (): void => {
      while (client.write(chunk, () => (accepted += chunk.length)));
    };
    client.on('drain', pump);
    pump();
    // The writer stalls once the reader's stream, ws and both kernels' socket buffers are full.
    let last = -1;
    await waitUntil('the writer to stall', async () => {
      const before = accepted;
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stalled = before === accepted && accepted === last;
      last = accepted;
      return stalled;
    });
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(64 * 1024 * 1024);
    client.off('drain', pump);
    const total = accepted + client.writableLength;
    const arrived = readBytes(server, total);
    server.resume();
    expect((await within(arrived, 20_000, 'the held-back bytes')).length).toBe(total);
  });

  it('closes the stream at one end when the WebSocket at the other closes', async () => {
    const { client, server, clientWs } = await pair();
    // 'end' (and so the close) comes once a reader has taken everything.
    server.resume();
    client.resume();
    clientWs.close();
    await within(once(server, 'close'), 5_000, "the server's stream to close");
    await within(once(client, 'close'), 5_000, "the client's stream to close");
  });
});

describe('frameHeader', () => {
  it('encodes final binary frames, short and 16-bit lengths, masked with the zero key for a client', () => {
    expect(frameHeader(5, false).toString('hex')).toBe('8205');
    expect(frameHeader(125, true).toString('hex')).toBe('82fd00000000');
    expect(frameHeader(126, false).toString('hex')).toBe('827e007e');
    expect(frameHeader(WS_MESSAGE_BYTES, true).toString('hex')).toBe('82fe400000000000');
  });
});
