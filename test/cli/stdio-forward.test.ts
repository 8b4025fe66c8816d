/**
 * `connect -W`: forwardStdio settles (and the process exits) only once
 * stdout has taken everything the connection delivered. A pipe's writes
 * are asynchronous in Node, so settling at the connection's close lost the
 * tail of the output when the reader was slower than the tunnel.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { forwardStdio } from '../../src/cli/stdio-forward.js';
import type { TunnelClient } from '../../src/tunnel/index.js';
import { within } from '../support/wait.js';

describe('forwardStdio', () => {
  it('settles only after a slow stdout has taken every byte the target sent', async () => {
    const size = 1024 * 1024;
    const payload = Buffer.alloc(size, 7);
    // The target: sends its bytes, then ends its side.
    const target = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.resume();
      socket.end(payload);
    });
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    const { port } = target.address() as net.AddressInfo;
    // Stands for the tunnel: the server side would dial the target and carry `socket` to it.
    const client = {
      dial: async (_host: string, _port: number, socket: net.Socket): Promise<void> => {
        const dialled = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        await once(dialled, 'connect');
        socket.pipe(dialled);
        dialled.pipe(socket);
      },
    } as unknown as TunnelClient;

    let taken = 0;
    // A reader slower than the connection: each write completes a few ms later.
    const stdout = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        setTimeout(() => {
          taken += chunk.length;
          callback();
        }, 2);
      },
    });
    const stdin = Readable.from([]);
    try {
      await within(forwardStdio(client, 'target', port, stdin, stdout), 30_000, 'forwardStdio to settle');
      expect(taken).toBe(size);
    } finally {
      target.close();
    }
  });
});
