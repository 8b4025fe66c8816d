/**
 * acceptSocks over a real socket pair: a request that arrives a byte at a
 * time, bytes sent before the reply kept for the tunnel, and each way a
 * handshake goes wrong answered (where SOCKS can) and closed with
 * ERR_MUXTUN_SOCKS.
 */
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { acceptSocks } from '../../src/tunnel/socks/accept.js';
import { encodeSocks4Request, encodeSocks5Request } from '../../src/tunnel/socks/codec.js';
import { hex } from '../support/bytes.js';
import { connectionEnd, socketPair } from '../support/net.js';
import { rejection, within } from '../support/wait.js';

const opened: net.Socket[] = [];
afterEach(() => {
  for (const socket of opened.splice(0)) socket.destroy();
});

async function pair(): Promise<[net.Socket, net.Socket]> {
  const sockets = await socketPair();
  opened.push(...sockets);
  return sockets;
}

/** Everything the client side reads until it ends. */
function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return within(new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks)))), 5_000, 'the client side to close');
}

describe('acceptSocks', () => {
  it('SOCKS5 a byte at a time: answers the greeting, resolves the CONNECT, keeps early data, then sends success', async () => {
    const [client, server] = await pair();
    const accepted = acceptSocks(server, 5_000);
    const bytes = Buffer.concat([hex('05 01 00'), encodeSocks5Request({ host: 'example.com', port: 443 }), Buffer.from('early')]);
    for (const byte of bytes) {
      client.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const request = await within(accepted, 5_000, 'the request');
    expect(request).toMatchObject({ version: 5, command: 1, host: 'example.com', port: 443 });
    let got = Buffer.alloc(0);
    const replies = new Promise<Buffer>((resolve) =>
      client.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= 12) resolve(got);
      }),
    );
    request.answer(null);
    server.resume();
    // Written a byte at a time, it may arrive in pieces: read until all five are in.
    let earlyBytes = Buffer.alloc(0);
    const early = await within(
      new Promise<Buffer>((resolve) =>
        server.on('data', (chunk: Buffer) => {
          earlyBytes = Buffer.concat([earlyBytes, chunk]);
          if (earlyBytes.length >= 5) resolve(earlyBytes);
        }),
      ),
      5_000,
      'the early data',
    );
    expect(early.toString()).toBe('early');
    expect(await within(replies, 5_000, 'the method choice and the success reply')).toEqual(hex('05 00  05 00 00 01 00000000 0000'));
  });

  it('a failure gets the matching SOCKS5 reply and a FIN', async () => {
    const [client, server] = await pair();
    const accepted = acceptSocks(server, 5_000);
    const all = readAll(client);
    client.write(Buffer.concat([hex('05 01 00'), encodeSocks5Request({ host: '10.0.0.1', port: 80 })]));
    (await accepted).answer('timeout');
    expect(await all).toEqual(hex('05 00  05 06 00 01 00000000 0000'));
  });

  it('SOCKS4a: success is 0x5A, failure 0x5B', async () => {
    const [client, server] = await pair();
    const accepted = acceptSocks(server, 5_000);
    const all = readAll(client);
    client.write(encodeSocks4Request({ host: 'localhost', port: 8080, userId: 'me' }));
    const request = await accepted;
    expect(request).toMatchObject({ version: 4, host: 'localhost', port: 8080 });
    request.answer('policy');
    expect(await all).toEqual(hex('00 5b 0000 00000000'));
  });

  it.each([
    ['a client that says nothing', Buffer.alloc(0), /no SOCKS request within 100 ms/, Buffer.alloc(0)],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n\r\n'), /not a SOCKS client \(first byte 0x47\)/, Buffer.alloc(0)],
    ['a SOCKS5 client that wants authentication', hex('05 01 02'), /offers no method without authentication/, hex('05 ff')],
    ['UDP ASSOCIATE', Buffer.concat([hex('05 01 00'), encodeSocks5Request({ host: '1.2.3.4', port: 53, command: 3 })]), /UDP ASSOCIATE is not supported/, hex('05 00 05 07 00 01 00000000 0000')],
    ['SOCKS4 BIND', encodeSocks4Request({ host: '1.2.3.4', port: 21, command: 2 }), /BIND is not supported/, hex('00 5b 0000 00000000')],
    ['a SOCKS4 user id without end', Buffer.concat([hex('04 01 0050 01020304'), Buffer.alloc(2000, 0x61)]), /user id longer than 255 bytes/, hex('00 5b 0000 00000000')],
  ])('%s: closed with ERR_MUXTUN_SOCKS and the reply SOCKS has for it', async (_, bytes, reason, reply) => {
    const [client, server] = await pair();
    const accepted = acceptSocks(server, 100);
    const all = readAll(client);
    if (bytes.length > 0) client.write(bytes);
    const error = await rejection(accepted);
    expect(error.code).toBe('ERR_MUXTUN_SOCKS');
    expect(error.message).toMatch(reason);
    expect(await all).toEqual(reply);
    expect(await connectionEnd(server, 2_000)).not.toBe('timeout');
  });
});
