/**
 * Forward-stream headers: encoding, reading one off a real Duplex (the rest
 * left for the next reader), every way reading can fail, and the shape
 * checks of -L and -R headers.
 */
import { PassThrough, type Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeStreamHeader, isLocalForwardHeader, isRemoteForwardHeader, MAX_STREAM_HEADER, readStreamHeader } from '../../src/tunnel/stream-header.js';

const PROTOCOL = 'ERR_MUXTUN_PROTOCOL';
/** Lets the stream deliver what was written (nextTick and I/O callbacks), without waiting for time to pass. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A promise plus whether it has settled yet, to check that a read is still waiting. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { promise, settled: () => settled };
}

/** Everything the stream delivers to a 'data' reader until it ends. */
function rest(stream: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** A header frame with any length field and body, for malformed input. */
function frame(length: number, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(length, 0);
  return Buffer.concat([head, Buffer.from(body)]);
}

const listenerCounts = (stream: Duplex): number[] => ['readable', 'end', 'error', 'close'].map((event) => stream.listenerCount(event));

describe('encodeStreamHeader', () => {
  it('writes a u16 big-endian length, then the JSON', () => {
    const encoded = encodeStreamHeader({ host: 'db', port: 5432 });
    const json = '{"host":"db","port":5432}';
    expect(encoded.readUInt16BE(0)).toBe(json.length);
    expect(encoded.subarray(2).toString('utf8')).toBe(json);
    expect(encoded.length).toBe(2 + json.length);
  });

  it('counts the length in bytes, not characters', () => {
    const encoded = encodeStreamHeader({ forward: 0, peer: 'é€' });
    expect(encoded.readUInt16BE(0)).toBe(Buffer.byteLength('{"forward":0,"peer":"é€"}'));
  });

  it(`accepts a header of exactly ${MAX_STREAM_HEADER} bytes and refuses one more`, () => {
    // {"host":"…","port":1} is 20 bytes around the host.
    const fits = encodeStreamHeader({ host: 'h'.repeat(MAX_STREAM_HEADER - 20), port: 1 });
    expect(fits.readUInt16BE(0)).toBe(MAX_STREAM_HEADER);
    let error: (Error & { code?: string }) | undefined;
    try {
      encodeStreamHeader({ host: 'h'.repeat(MAX_STREAM_HEADER - 19), port: 1 });
    } catch (caught) {
      error = caught as Error & { code?: string };
    }
    expect(error?.code).toBe(PROTOCOL);
    expect(error?.message).toBe(`stream header of ${MAX_STREAM_HEADER + 1} bytes exceeds ${MAX_STREAM_HEADER}`);
  });
});

describe('readStreamHeader', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads a header written with data after it, and leaves the data for the next reader', async () => {
    const stream = new PassThrough();
    stream.end(Buffer.concat([encodeStreamHeader({ host: 'db', port: 5432 }), Buffer.from('GET / HTTP/1.1\r\n')]));
    expect(await readStreamHeader(stream, 5_000)).toEqual({ host: 'db', port: 5432 });
    expect((await rest(stream)).toString()).toBe('GET / HTTP/1.1\r\n');
  });

  it('leaves data that arrives later to a reader that comes later', async () => {
    const stream = new PassThrough();
    stream.write(encodeStreamHeader({ forward: 2, peer: '192.0.2.1:5555' }));
    expect(await readStreamHeader(stream, 5_000)).toEqual({ forward: 2, peer: '192.0.2.1:5555' });
    stream.end('later');
    expect((await rest(stream)).toString()).toBe('later');
  });

  it('reads a header that arrives one byte at a time, then the data after it', async () => {
    const stream = new PassThrough();
    const bytes = Buffer.concat([encodeStreamHeader({ host: 'example.com', port: 443 }), Buffer.from('payload')]);
    const header = track(readStreamHeader(stream, 5_000));
    const headerLength = bytes.length - 'payload'.length;
    for (let i = 0; i < headerLength - 1; i++) {
      stream.write(bytes.subarray(i, i + 1));
      await turn();
      expect(header.settled(), `settled after ${i + 1} bytes`).toBe(false);
    }
    stream.write(bytes.subarray(headerLength - 1, headerLength + 2));
    stream.end(bytes.subarray(headerLength + 2));
    expect(await header.promise).toEqual({ host: 'example.com', port: 443 });
    expect((await rest(stream)).toString()).toBe('payload');
  });

  it('two headers back to back are read by two calls, each taking only its own', async () => {
    const stream = new PassThrough();
    stream.end(Buffer.concat([encodeStreamHeader({ host: 'a', port: 1 }), encodeStreamHeader({ host: 'b', port: 2 }), Buffer.from('!')]));
    expect(await readStreamHeader(stream, 5_000)).toEqual({ host: 'a', port: 1 });
    expect(await readStreamHeader(stream, 5_000)).toEqual({ host: 'b', port: 2 });
    expect((await rest(stream)).toString()).toBe('!');
  });

  it('returns whatever JSON the header holds: checking its shape is the caller’s job', async () => {
    const stream = new PassThrough();
    stream.write(frame(2, '42'));
    expect(await readStreamHeader(stream, 5_000)).toBe(42);
  });

  it(`accepts a length field of ${MAX_STREAM_HEADER}`, async () => {
    const body = JSON.stringify({ host: 'h'.repeat(MAX_STREAM_HEADER - 20), port: 1 });
    const stream = new PassThrough();
    stream.write(frame(MAX_STREAM_HEADER, body));
    expect(await readStreamHeader(stream, 5_000)).toEqual(JSON.parse(body));
  });

  it(`rejects a length field over ${MAX_STREAM_HEADER} as soon as it arrives`, async () => {
    const stream = new PassThrough();
    // Only the two length bytes: the reader must not wait for 1025 more.
    stream.write(frame(MAX_STREAM_HEADER + 1));
    await expect(readStreamHeader(stream, 5_000)).rejects.toMatchObject({ code: PROTOCOL, message: `stream header of ${MAX_STREAM_HEADER + 1} bytes exceeds ${MAX_STREAM_HEADER}` });
    const huge = new PassThrough();
    huge.write(frame(0xffff));
    await expect(readStreamHeader(huge, 5_000)).rejects.toMatchObject({ code: PROTOCOL, message: `stream header of 65535 bytes exceeds ${MAX_STREAM_HEADER}` });
  });

  it('rejects a header that is not JSON', async () => {
    const stream = new PassThrough();
    stream.write(frame(9, '{"host":1'));
    await expect(readStreamHeader(stream, 5_000)).rejects.toMatchObject({ code: PROTOCOL, message: 'stream header is not valid JSON' });
  });

  it('rejects an empty header (length 0) as not JSON', async () => {
    const stream = new PassThrough();
    stream.write(frame(0));
    await expect(readStreamHeader(stream, 5_000)).rejects.toMatchObject({ code: PROTOCOL, message: 'stream header is not valid JSON' });
  });

  it.each([
    ['nothing', Buffer.alloc(0)],
    ['one byte of the length', Buffer.from([0])],
    ['part of the header', encodeStreamHeader({ host: 'db', port: 5432 }).subarray(0, 10)],
  ])('rejects when the stream ends after %s', async (_, bytes) => {
    const stream = new PassThrough();
    stream.end(bytes);
    await expect(readStreamHeader(stream, 5_000)).rejects.toMatchObject({ code: PROTOCOL, message: 'the stream ended before its header' });
  });

  it('rejects when the stream is closed (destroyed without an error) before its header', async () => {
    const stream = new PassThrough();
    stream.write(Buffer.from([0, 20, 123]));
    const header = readStreamHeader(stream, 5_000);
    await turn();
    stream.destroy();
    await expect(header).rejects.toMatchObject({ code: PROTOCOL, message: 'the stream ended before its header' });
  });

  it('rejects with the stream’s own error when it fails', async () => {
    const stream = new PassThrough();
    const header = readStreamHeader(stream, 5_000);
    const failure = new Error('connection reset');
    stream.destroy(failure);
    await expect(header).rejects.toBe(failure);
  });

  it('rejects after timeoutMs without a whole header, and not before', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const stream = new PassThrough();
    stream.write(Buffer.from([0, 20]));
    const header = track(readStreamHeader(stream, 250));
    await turn();
    vi.advanceTimersByTime(249);
    await turn();
    expect(header.settled()).toBe(false);
    vi.advanceTimersByTime(1);
    await expect(header.promise).rejects.toMatchObject({ code: PROTOCOL, message: 'no stream header within 250 ms' });
  });

  it('leaves no timer and no listeners behind, whether it resolves or rejects', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const good = new PassThrough();
    const before = listenerCounts(good);
    good.write(encodeStreamHeader({ host: 'db', port: 1 }));
    await readStreamHeader(good, 1_000);
    expect(vi.getTimerCount()).toBe(0);
    expect(listenerCounts(good)).toEqual(before);

    const bad = new PassThrough();
    bad.write(frame(3, 'nope'));
    await expect(readStreamHeader(bad, 1_000)).rejects.toMatchObject({ code: PROTOCOL });
    expect(vi.getTimerCount()).toBe(0);
    expect(listenerCounts(bad)).toEqual(before);

    const ended = new PassThrough();
    ended.end();
    await expect(readStreamHeader(ended, 1_000)).rejects.toMatchObject({ code: PROTOCOL });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('round-trips what encodeStreamHeader wrote, through the shape checks', async () => {
    const stream = new PassThrough();
    stream.write(Buffer.concat([encodeStreamHeader({ host: '::1', port: 65535 }), encodeStreamHeader({ forward: 0, peer: '[::1]:40000' })]));
    const local = await readStreamHeader(stream, 5_000);
    const remote = await readStreamHeader(stream, 5_000);
    expect(isLocalForwardHeader(local)).toBe(true);
    expect(isRemoteForwardHeader(remote)).toBe(true);
    expect(isRemoteForwardHeader(local)).toBe(false);
    expect(isLocalForwardHeader(remote)).toBe(false);
  });
});

describe('isLocalForwardHeader', () => {
  it.each([
    [{ host: 'a', port: 1 }],
    [{ host: 'h'.repeat(255), port: 65535 }],
    [{ host: 'db.internal', port: 5432, extra: true }],
    [{ host: 'a', port: 1, peer: '127.0.0.1:50000', dest: '127.0.0.1:8080' }],
    [{ host: 'a', port: 1, peer: '::1:50000', dest: '::ffff:10.0.0.1:8080' }],
  ])('accepts %j', (value) => {
    expect(isLocalForwardHeader(value)).toBe(true);
  });

  it.each([
    ['no host', { port: 80 }],
    ['an empty host', { host: '', port: 80 }],
    ['a host of 256 characters', { host: 'h'.repeat(256), port: 80 }],
    ['a host that is not a string', { host: 1, port: 80 }],
    ['no port', { host: 'a' }],
    ['port 0', { host: 'a', port: 0 }],
    ['port 65536', { host: 'a', port: 65536 }],
    ['a negative port', { host: 'a', port: -80 }],
    ['a fractional port', { host: 'a', port: 80.5 }],
    ['a port as a string', { host: 'a', port: '80' }],
    ['null', null],
    ['a string', 'a:80'],
    ['a number', 80],
    ['an array', ['a', 80]],
    ['a peer that is not an IP address', { host: 'a', port: 80, peer: 'example.com:80' }],
    ['a peer without a port', { host: 'a', port: 80, peer: '127.0.0.1' }],
    ['a peer that is not a string', { host: 'a', port: 80, peer: 1 }],
    ['a peer of 101 characters', { host: 'a', port: 80, peer: `${'1'.repeat(96)}:8080` }],
    ['a dest with port 65536', { host: 'a', port: 80, dest: '127.0.0.1:65536' }],
  ])('refuses %s', (_, value) => {
    expect(isLocalForwardHeader(value)).toBe(false);
  });
});

describe('isRemoteForwardHeader', () => {
  it.each([
    [{ forward: 0, peer: '' }],
    [{ forward: 31, peer: 'p'.repeat(300) }],
    [{ forward: 1, peer: '[2001:db8::1]:65535' }],
    [{ forward: 1, peer: '127.0.0.1:5000', dest: '127.0.0.1:9000' }],
  ])('accepts %j', (value) => {
    expect(isRemoteForwardHeader(value)).toBe(true);
  });

  it.each([
    ['no forward', { peer: 'x' }],
    ['a negative forward', { forward: -1, peer: 'x' }],
    ['a fractional forward', { forward: 0.5, peer: 'x' }],
    ['a forward as a string', { forward: '0', peer: 'x' }],
    ['no peer', { forward: 0 }],
    ['a peer of 301 characters', { forward: 0, peer: 'p'.repeat(301) }],
    ['a peer that is not a string', { forward: 0, peer: 1 }],
    ['a dest that is not an IP address', { forward: 0, peer: 'x', dest: 'localhost:9000' }],
    ['null', null],
    ['a number', 0],
  ])('refuses %s', (_, value) => {
    expect(isRemoteForwardHeader(value)).toBe(false);
  });
});
