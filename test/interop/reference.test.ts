/**
 * What the Go reference (inconshreveable/muxado) puts on the wire, pinned with
 * a raw socket and literal bytes, independently of our engine. The engine's
 * interop depends on each of these; when one changes, docs/muxado.md and the
 * engine need a look. See interop.test.ts for the engine against the reference.
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireGoReference, runGoClient, skipInterop, startGoServer, StreamTypes, waitForEvent, type GoServer } from './go-peer.js';
import { u32 } from '../support/bytes.js';
import { track } from '../support/scope.js';
import { encodeFrame, F, T, WirePeer } from './raw-frames.js';

const HEARTBEAT_SYN_PAYLOAD = '7fffffff' + 'fffffeff'; // priority 0x7FFFFFFF, type 0xFFFFFEFF

describe.skipIf(skipInterop())('Go reference peer on the wire (raw socket)', () => {
  let goServer: GoServer;

  beforeAll(async () => {
    requireGoReference();
    goServer = await startGoServer();
  }, 200_000);

  afterAll(async () => {
    await goServer?.stop();
  });

  /** A raw TCP listener; resolves with the first connection as a WirePeer. */
  async function rawListener(): Promise<{ port: number; peer: Promise<WirePeer> }> {
    const listener = net.createServer();
    track(listener);
    const peer = once(listener, 'connection').then(([socket]) => {
      track(socket as net.Socket);
      return new WirePeer(socket as net.Socket);
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    return { port: (listener.address() as net.AddressInfo).port, peer };
  }

  async function rawClient(): Promise<WirePeer> {
    const socket = net.connect(goServer.port, '127.0.0.1');
    track(socket);
    await once(socket, 'connect');
    return new WirePeer(socket);
  }

  it('client: opens heartbeat stream 3 first, and its Close() sends a GOAWAY whose length overstates the payload', async () => {
    const { port, peer: peerP } = await rawListener();
    // No streams: the client only starts (heartbeat SYN), waits a little, and Close()s.
    const run = runGoClient(port, { streams: 0, bytes: 0, idleMs: 300 });
    const peer = await peerP;
    const { exit, process } = await run;
    expect(exit.code, process.tail()).toBe(0);
    await peer.ended;

    const bytes = peer.bytes.toString('hex');
    // SYN, length 8, flags PRIORITY|TYPE, id 3 (the client's counter starts at 1).
    expect(bytes.slice(0, 32)).toBe('0008' + '06' + '01' + '00000003' + HEARTBEAT_SYN_PAYLOAD);
    // GOAWAY(last id 0, NO_ERROR) from Close(): the header claims 31 bytes
    // (16 + len("Session Close()")) but only the 8-byte body follows and no
    // debug bytes at all (WGoAway.Set never stores them and counts the header
    // in the length). A receiver that waits for the whole frame never sees
    // this GOAWAY complete: it gets EOF mid-frame instead.
    expect(bytes.slice(32)).toBe('001f' + '00' + '06' + '00000000' + '00000000' + '00000000');
  });

  it('client: sends a 4-byte heartbeat (id 0) on stream 3 about every 3 s', async () => {
    const { port, peer: peerP } = await rawListener();
    const run = runGoClient(port, { streams: 0, bytes: 0, idleMs: 4_000 });
    const peer = await peerP;
    const beat = await peer.waitFor('a heartbeat', (frames) => frames.find((f) => f.type === T.DATA && f.id === 3), 6_000);
    expect(beat.flags).toBe(0);
    expect(beat.payload.toString('hex')).toBe('00000000');
    // Echo it as a muxtun peer must, so the run ends cleanly.
    peer.send(encodeFrame(T.DATA, 0, 3, beat.payload));
    const { exit, process } = await run;
    expect(exit.code, process.tail()).toBe(0);
  });

  it('server: opens heartbeat stream 2 first', async () => {
    const peer = await rawClient();
    const syn = await peer.waitFor('the first frame', (frames) => frames[0]);
    expect(encodeFrame(syn.type, syn.flags, syn.id, syn.payload).toString('hex')).toBe('0008' + '06' + '01' + '00000002' + HEARTBEAT_SYN_PAYLOAD);
  });

  it('server: echo ends with HalfClose() then Close(), which puts two empty DATA+FIN on the wire', async () => {
    const peer = await rawClient();
    // SYN id 3 (plain), then "hello" with FIN.
    peer.send(encodeFrame(T.SYN, 0, 3), encodeFrame(T.DATA, F.FIN, 3, Buffer.from('hello')));
    await peer.waitFor('two FINs on stream 3', (frames) =>
      frames.filter((f) => f.id === 3 && f.type === T.DATA && f.flags & F.FIN).length >= 2 ? true : undefined,
    );
    const onStream = peer.frames.filter((f) => f.id === 3);
    const windowGiven = onStream.filter((f) => f.type === T.WNDINC).reduce((sum, f) => sum + f.payload.readUInt32BE(0), 0);
    expect(windowGiven).toBe(5);
    const data = onStream.filter((f) => f.type === T.DATA);
    expect(Buffer.concat(data.map((f) => f.payload)).toString()).toBe('hello');
    expect(data.slice(-2).map((f) => [f.flags, f.payload.length])).toEqual([
      [F.FIN, 0],
      [F.FIN, 0],
    ]);
  });

  it('server: DATA after its Close() is answered with RST(STREAM_CLOSED), not CANCEL', async () => {
    const peer = await rawClient();
    // SYN id 3 with TYPE = 8: the Go server Close()s it at once.
    peer.send(encodeFrame(T.SYN, F.TYPE, 3, u32(StreamTypes.CLOSE)));
    const fin = await peer.waitFor('the FIN of Close()', (frames) => frames.find((f) => f.id === 3 && f.type === T.DATA && f.flags & F.FIN));
    expect(fin.payload.length).toBe(0);
    // Close() has returned (and dropped the stream) once the event is out.
    await waitForEvent(goServer.process, 'stream-end of the closed stream', (e) => e.event === 'stream-end' && e.id === 3 && e.type === StreamTypes.CLOSE);
    peer.send(encodeFrame(T.DATA, 0, 3, Buffer.from('late')));
    const rst = await peer.waitFor('an RST', (frames) => frames.find((f) => f.type === T.RST));
    expect(rst.id).toBe(3);
    expect(rst.payload.readUInt32BE(0)).toBe(4); // STREAM_CLOSED: the stream is gone from the map, so the session answers
  });
});
