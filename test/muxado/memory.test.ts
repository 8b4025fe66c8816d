import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { client, InvalidArgumentError, server, SessionClosedError, type Stream } from '../../src/muxado/index.js';
import { sha256 } from '../support/net.js';
import { patternBytes } from '../support/bytes.js';
import { quiet, readAll, streamOutcome, writeAll } from './helpers.js';

type Callback = (error?: Error | null) => void;

/** One end of an in-memory byte pipe pair, with backpressure: a write completes when the other end reads. */
class MemoryEnd extends Duplex {
  other!: MemoryEnd;
  #pending: Callback | null = null;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    if (this.other.push(chunk)) callback();
    else this.other.#pending = callback;
  }

  override _read(): void {
    const pending = this.#pending;
    this.#pending = null;
    pending?.();
  }

  override _final(callback: Callback): void {
    this.other.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: Callback): void {
    if (!this.other.destroyed) this.other.destroy();
    callback(error);
  }
}

function memoryPair(): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd({ allowHalfOpen: true, highWaterMark: 32 * 1024 });
  const b = new MemoryEnd({ allowHalfOpen: true, highWaterMark: 32 * 1024 });
  a.other = b;
  b.other = a;
  return [a, b];
}

describe('sessions over an in-memory Duplex pair', () => {
  it('open, accept, move data both ways intact, close', async () => {
    const [a, b] = memoryPair();
    const c = client(a, { heartbeat: false });
    const s = server(b, { heartbeat: false });
    const up = patternBytes(2 * 1024 * 1024, 1);
    const down = patternBytes(1024 * 1024, 2);
    const streams = Array.from({ length: 4 }, () => quiet(c.open()));
    const served: Array<Promise<string>> = [];
    s.on('stream', (stream: Stream) => {
      quiet(stream);
      served.push(
        readAll(stream).then(async (got) => {
          await writeAll(stream, down);
          return sha256(got);
        }),
      );
    });
    const results = await Promise.all(streams.map(async (stream) => (await Promise.all([readAll(stream), writeAll(stream, up)]))[0]));
    for (const got of results) expect(sha256(got)).toBe(sha256(down));
    expect(await Promise.all(served)).toEqual(streams.map(() => sha256(up)));
    s.removeAllListeners('stream');
    s.on('stream', quiet);

    const open = quiet(c.open());
    const outcome = streamOutcome(open);
    c.close();
    expect((await s.closed).initiator).toBe('remote');
    expect(await outcome).toBeInstanceOf(SessionClosedError);
  });

  it('heartbeats work without a socket', async () => {
    const [a, b] = memoryPair();
    const options = { heartbeat: true, heartbeatInterval: 20, heartbeatTolerance: 100 };
    const c = client(a, options);
    const s = server(b, options);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([c.isClosed, s.isClosed]).toEqual([false, false]);
    expect(c.rtt).toBeGreaterThanOrEqual(0);
    c.close();
    await s.closed;
  });

  it('a transport already destroyed gives a session that is already closed', async () => {
    const [a] = memoryPair();
    a.destroy();
    const c = client(a);
    expect(c.isClosed).toBe(true);
    expect((await c.closed).error?.code).toBe('ERR_MUXADO_TRANSPORT');
  });
});

describe('session options', () => {
  it.each([
    [{ maxStreams: 0 }, /options\.maxStreams must be an integer from 1/],
    [{ maxStreams: 1.5 }, /options\.maxStreams/],
    [{ acceptBacklog: -1 }, /options\.acceptBacklog/],
    [{ maxStreamWindow: 1000 }, /options\.maxStreamWindow must be an integer from 65536/],
    [{ maxStreamWindow: 2 ** 31 }, /options\.maxStreamWindow/],
    [{ heartbeatInterval: 0 }, /options\.heartbeatInterval/],
    [{ heartbeatTolerance: '5' }, /options\.heartbeatTolerance .* got 5/],
    [{ closeTimeout: Infinity }, /options\.closeTimeout/],
    [{ maxControlQueueBytes: 10 }, /options\.maxControlQueueBytes/],
    [{ heartbeat: 'yes' }, /options\.heartbeat must be a boolean/],
    [{ windowSize: 5 }, /unknown session option "windowSize"/],
  ])('rejects %o, naming the field', (options, message) => {
    const [a] = memoryPair();
    let error: unknown;
    try {
      client(a, options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).code).toBe('ERR_MUXADO_INVALID_ARGUMENT');
    expect((error as Error).message).toMatch(message);
    a.destroy();
  });

  it('takes undefined as the default', () => {
    const [a] = memoryPair();
    const c = client(a, { maxStreams: undefined, heartbeat: false });
    expect(c.isClosed).toBe(false);
    c.close();
  });
});
