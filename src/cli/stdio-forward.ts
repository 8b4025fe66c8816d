/**
 * `connect -W host:port`: standard input and output as one forwarded
 * connection. The tunnel carries net.Sockets (bridge(), ResumableConn), so
 * stdio is joined to one end of a loopback TCP pair and the tunnel carries
 * the other end: half-close, backpressure and resumption work as for any
 * forwarded connection. Only forwarded bytes reach stdout.
 */
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { TunnelClient } from '../tunnel/index.js';

/** A connected loopback pair: `outer` for the tunnel, `inner` for stdio. */
async function loopbackPair(): Promise<{ inner: net.Socket; outer: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  try {
    const { port } = server.address() as net.AddressInfo;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const inner = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      inner.once('connect', resolve);
      inner.once('error', reject);
    });
    return { inner, outer: await accepted };
  } finally {
    server.close();
  }
}

/**
 * Carries stdin/stdout to host:port through the server. Resolves when both
 * directions have ended; rejects with the reason the server could not dial
 * (ERR_MUXTUN_DIAL / ERR_MUXTUN_POLICY), or when the connection was reset.
 */
export async function forwardStdio(client: TunnelClient, host: string, port: number, stdin: Readable, stdout: Writable): Promise<void> {
  const { inner, outer } = await loopbackPair();
  try {
    await client.dial(host, port, outer);
  } catch (error) {
    inner.destroy();
    outer.destroy();
    throw error;
  }
  await new Promise<void>((resolve, reject) => {
    let failure: Error | undefined;
    inner.on('error', (error) => (failure ??= error));
    // EOF on stdin half-closes: the target sees FIN and may go on answering.
    stdin.pipe(inner);
    inner.pipe(stdout, { end: false });
    inner.once('close', () => {
      stdin.unpipe(inner);
      // Nothing more will be read: let the process end even if stdin is still open.
      if (!stdin.readableEnded) stdin.destroy();
      // The process exits when this settles, and a pipe's writes are asynchronous in Node:
      // what stdout still holds would be lost with it.
      void flushed(stdout).then(() => (failure ? reject(failure) : resolve()));
    });
  });
}

/**
 * Resolves once everything written to `out` so far has been handed to the
 * system, or `out` failed (a reader that went away: EPIPE). A write's
 * callback runs after those of the writes before it.
 */
function flushed(out: Writable): Promise<void> {
  if (out.writableLength === 0 || out.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('error', done);
      out.off('close', done);
      resolve();
    };
    out.once('error', done);
    out.once('close', done);
    out.write(Buffer.alloc(0), () => done());
  });
}
