/**
 * Data through real `muxtun serve` and `muxtun connect` processes over real
 * TLS: -L and -R echo, several forwards in one session, many concurrent
 * connections with every byte checked, and half-close in both directions.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { remotePort, startConnect, startServe } from '../support/muxtun.js';
import { echoServer, exchange, freePort, hashExchange, hashServer, listen, sha256 } from '../support/net.js';
import { Scope } from '../support/scope.js';
import { within } from '../support/wait.js';

describe.concurrent('forwarding', () => {
  it('-L: a local connection reaches an echo server on the server side', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const local = await freePort();
    await startConnect(server, { scope, local: [`${local}:127.0.0.1:${echo.port}`] });

    const data = randomBytes(100_000);
    expect((await exchange(local, data)).equals(data)).toBe(true);
  });

  it('-R: a connection to the server-side port reaches an echo server on the client side', async (context) => {
    const scope = new Scope(context);
    const echo = await echoServer(scope);
    const server = await startServe({ scope });
    const client = await startConnect(server, { scope, remote: [`127.0.0.1:0:127.0.0.1:${echo.port}`] });

    const data = randomBytes(100_000);
    expect((await exchange(remotePort(client, `127.0.0.1:${echo.port}`), data)).equals(data)).toBe(true);
  });

  it('several -L and -R in one connect each reach their own target', async (context) => {
    const scope = new Scope(context);
    // Each target says who it is before echoing, so a mixed-up forward shows.
    const tagged = (name: string) => listen((socket) => {
      socket.write(`${name}\n`);
      socket.pipe(socket);
    }, scope);
    const [a, b, c, d] = await Promise.all([tagged('a'), tagged('b'), tagged('c'), tagged('d')]);
    const server = await startServe({ scope });
    const [la, lb] = await Promise.all([freePort(), freePort()]);
    const client = await startConnect(server, {
      scope,
      local: [`${la}:127.0.0.1:${a.port}`, `127.0.0.1:${lb}:localhost:${b.port}`],
      remote: [`127.0.0.1:0:127.0.0.1:${c.port}`, `0:127.0.0.1:${d.port}`],
    });
    const ports = { a: la, b: lb, c: remotePort(client, `127.0.0.1:${c.port}`), d: remotePort(client, `127.0.0.1:${d.port}`) };
    await Promise.all(
      Object.entries(ports).map(async ([name, port]) => {
        const data = randomBytes(20_000);
        const received = await exchange(port, data);
        expect(received.subarray(0, 2).toString(), `forward to ${name}`).toBe(`${name}\n`);
        expect(received.subarray(2).equals(data), `forward to ${name}`).toBe(true);
      }),
    );
  });

  for (const kind of ['-L', '-R'] as const) {
    it(`${kind}: one connection carrying 32 MiB each way at once, sha256-checked`, { timeout: 60_000 }, async (context) => {
      const scope = new Scope(context);
      const size = 32 * 1024 * 1024;
      const target = await hashServer(size, scope);
      const port = await forwardTo(scope, kind, target.port);
      await hashExchange(port, size, 45_000);
    });

    it(`${kind}: 200 concurrent connections through one session, 64 KiB each way, sha256-checked`, { timeout: 60_000 }, async (context) => {
      const scope = new Scope(context);
      const size = 64 * 1024;
      const target = await hashServer(size, scope);
      const server = await startServe({ scope });
      let port: number;
      if (kind === '-L') {
        port = await freePort();
        await startConnect(server, { scope, local: [`${port}:127.0.0.1:${target.port}`] });
      } else {
        const client = await startConnect(server, { scope, remote: [`127.0.0.1:0:127.0.0.1:${target.port}`] });
        port = remotePort(client, `127.0.0.1:${target.port}`);
      }
      const results = await Promise.allSettled(Array.from({ length: 200 }, () => hashExchange(port, size, 30_000)));
      const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`#${i}: ${(r.reason as Error).message}`] : []));
      expect(failures, failures.slice(0, 5).join('\n')).toEqual([]);
      expect(target.connections).toHaveLength(200);
    });

    it(`${kind}: half-close by the connecting side: it ends its writes and still gets the whole answer`, async (context) => {
      const scope = new Scope(context);
      // Answers only after the request ended, so the answer must travel after the FIN.
      const target = await listen((socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => {
          const request = Buffer.concat(chunks);
          socket.write(Buffer.from(sha256(request), 'hex'));
          socket.end(Buffer.alloc(1024 * 1024, 7));
        });
      }, scope);
      const port = await forwardTo(scope, kind, target.port);
      const request = randomBytes(300_000);
      const answer = await exchange(port, request);
      expect(answer.length).toBe(32 + 1024 * 1024);
      expect(answer.subarray(0, 32).toString('hex')).toBe(sha256(request));
      expect(answer.subarray(32).every((byte) => byte === 7)).toBe(true);
    });

    it(`${kind}: half-close by the target: it ends its writes first and still receives everything`, async (context) => {
      const scope = new Scope(context);
      const greeting = randomBytes(200_000);
      let receivedByTarget: (data: Buffer) => void = () => {};
      const targetGot = new Promise<Buffer>((resolve) => (receivedByTarget = resolve));
      const target = await listen((socket) => {
        socket.end(greeting); // FIN right away; reading goes on
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => receivedByTarget(Buffer.concat(chunks)));
      }, scope);
      const port = await forwardTo(scope, kind, target.port);

      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      socket.on('error', () => {});
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      const closed = once(socket, 'close');
      await within(once(socket, 'end'), 10_000, `the FIN after the target's data (got ${chunks.length} chunks)`);
      expect(Buffer.concat(chunks).equals(greeting)).toBe(true);
      // Our side is still open: write after the peer's FIN, then end.
      const reply = randomBytes(300_000);
      socket.end(reply);
      const got = await within(targetGot, 10_000, 'the target to receive the data written after its FIN');
      expect(got.length).toBe(reply.length);
      expect(got.equals(reply)).toBe(true);
      await within(closed, 10_000, 'the connection to close');
    });
  }
});

/** Sets up one -L or -R forward to 127.0.0.1:targetPort and returns the port to connect to. */
async function forwardTo(scope: Scope, kind: '-L' | '-R', targetPort: number): Promise<number> {
  const server = await startServe({ scope });
  if (kind === '-L') {
    const port = await freePort();
    await startConnect(server, { scope, local: [`${port}:127.0.0.1:${targetPort}`] });
    return port;
  }
  const client = await startConnect(server, { scope, remote: [`127.0.0.1:0:127.0.0.1:${targetPort}`] });
  return remotePort(client, `127.0.0.1:${targetPort}`);
}
