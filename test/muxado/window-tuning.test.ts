import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { resolveSessionConfig } from '../../src/muxado/config.js';
import { FrameType, INITIAL_WINDOW } from '../../src/muxado/constants.js';
import { client, defaultSessionConfig, InvalidArgumentError, server, type Session, type SessionOptions } from '../../src/muxado/index.js';
import { patternBytes } from '../support/bytes.js';
import { currentScope } from '../support/scope.js';
import { thrown, waitUntil, within } from '../support/wait.js';
import { quiet, rawPeerOf, sessionPair } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const FLOOR = 256 * KiB;
// Made once, before any session: making it blocks the event loop, which would inflate the first round trips.
const DATA = patternBytes(24 * MiB, 3);

type Callback = (error?: Error | null) => void;

/** One end of an in-memory link that delivers every write `delayMs` later: a long path, without a bandwidth limit. */
class DelayedEnd extends Duplex {
  other!: DelayedEnd;
  constructor(readonly delayMs: number) {
    super({ allowHalfOpen: true });
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: Callback): void {
    const data = Buffer.concat(chunks.map(({ chunk }) => chunk));
    setTimeout(() => this.other.push(data), this.delayMs);
    callback();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this._writev([{ chunk: Buffer.from(chunk) }], callback);
  }

  override _read(): void {}

  override _final(callback: Callback): void {
    setTimeout(() => this.other.push(null), this.delayMs);
    callback();
  }

  override _destroy(error: Error | null, callback: Callback): void {
    if (!this.other.destroyed) this.other.destroy();
    callback(error);
  }
}

/** A client and a server session over a link with `delayMs` each way (heartbeats on: they give the round trip). */
function delayedSessions(delayMs: number, serverOptions: SessionOptions = {}): { client: Session; server: Session } {
  const a = new DelayedEnd(delayMs);
  const b = new DelayedEnd(delayMs);
  a.other = b;
  b.other = a;
  const c = client(a);
  const s = server(b, serverOptions);
  currentScope().add(() => {
    c.close();
    s.close();
    a.destroy();
    b.destroy();
  });
  return { client: c, server: s };
}

/**
 * Writes `total` bytes on each stream (without ending it) while the peer reads them
 * (`onChunk` runs per chunk read), then waits for the window the reader
 * returned to reach the writer. Returns the largest `sendWindow` each writer saw
 * while sampling, and its `sendWindow` once everything was read and returned.
 */
async function bulk(
  from: Session,
  to: Session,
  streams: number,
  total: number,
  onChunk: (chunk: Buffer) => void = () => {},
): Promise<{ peak: number[]; settled: number[] }> {
  const accepted = Array.from({ length: streams }, () => to.accept());
  const writers = Array.from({ length: streams }, () => quiet(from.open()));
  const readers = (await Promise.all(accepted)).map(quiet);
  const peak = writers.map(() => 0);
  const sample = (): void => writers.forEach((w, i) => (peak[i] = Math.max(peak[i]!, w.sendWindow)));
  const sampler = setInterval(sample, 2);
  try {
    const data = DATA.subarray(0, total);
    const read = readers.map(
      (reader) =>
        new Promise<void>((resolve) => {
          let got = 0;
          reader.on('data', (chunk: Buffer) => {
            onChunk(chunk);
            got += chunk.length;
            if (got === total) resolve();
          });
        }),
    );
    await Promise.all(
      writers.map(async (writer) => {
        for (let at = 0; at < total; at += 64 * KiB) {
          if (!writer.write(data.subarray(at, at + 64 * KiB))) await once(writer, 'drain');
        }
      }),
    );
    await within(Promise.all(read), 30_000, 'the reader to get every byte');
    // A round trip on a fresh stream: the WNDINCs the readers queued before its answer have reached the writers.
    await roundTrip(from, to);
    sample();
    return { peak, settled: writers.map((w) => w.sendWindow) };
  } finally {
    clearInterval(sampler);
  }
}

async function roundTrip(from: Session, to: Session): Promise<void> {
  const accepted = to.accept();
  const ping = quiet(from.open());
  ping.write('?');
  const pong = quiet(await accepted);
  await once(pong, 'data');
  pong.write('!');
  await once(ping, 'data');
}

/** Blocks the event loop for `ms`: a reader with real work to do per chunk. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('receive window growth above the floor, by round trip', () => {
  it('over a 40 ms link a bulk stream outgrows the floor, within the 16 MiB cap', async () => {
    const { client: c, server: s } = delayedSessions(40);
    await waitUntil('a round trip measured', () => s.minRtt >= 0, 2_000, 5);
    const { peak, settled } = await bulk(c, s, 1, 24 * MiB);
    expect(s.minRtt).toBeGreaterThanOrEqual(75); // timers may fire a little early
    // Once all is read the writer holds all but the last unreturned quarter of the window.
    expect(settled[0]).toBeGreaterThan(FLOOR);
    expect(peak[0]).toBeLessThanOrEqual(defaultSessionConfig.maxStreamWindow);
  });

  it('stops at maxStreamWindow', async () => {
    const { client: c, server: s } = delayedSessions(40, { maxStreamWindow: 512 * KiB });
    const { peak, settled } = await bulk(c, s, 1, 8 * MiB);
    expect(settled[0]).toBeGreaterThan(FLOOR);
    expect(peak[0]).toBeLessThanOrEqual(512 * KiB);
  });

  it('stays within maxSessionWindowGrowth summed over streams', async () => {
    // Room for two streams at the floor and one doubling: 2 x 192 KiB + 256 KiB.
    const budget = 640 * KiB;
    const { client: c, server: s } = delayedSessions(40, { maxSessionWindowGrowth: budget });
    const { peak, settled } = await bulk(c, s, 2, 6 * MiB);
    expect(peak.reduce((sum, p) => sum + p - INITIAL_WINDOW, 0)).toBeLessThanOrEqual(budget);
    expect(Math.max(...settled)).toBeGreaterThan(FLOOR);
  });

  it('without heartbeats there is no round trip, and the window stays at the floor', async () => {
    const a = new DelayedEnd(40);
    const b = new DelayedEnd(40);
    a.other = b;
    b.other = a;
    const c = client(a, { heartbeat: false });
    const s = server(b, { heartbeat: false });
    currentScope().add(() => {
      c.close();
      s.close();
    });
    const { peak, settled } = await bulk(c, s, 1, 4 * MiB);
    expect(s.minRtt).toBe(-1);
    expect(settled[0]).toBeGreaterThan(FLOOR / 2);
    expect(peak[0]).toBeLessThanOrEqual(FLOOR);
  });

  it('on loopback, with a reader that works on each chunk, the window stays at the floor', async () => {
    const fast = { heartbeat: true, heartbeatInterval: 20 };
    const { client: c, server: s } = await sessionPair(fast, fast);
    await waitUntil('a round trip measured', () => s.minRtt >= 0, 2_000, 5);
    const { peak, settled } = await bulk(c, s, 1, 4 * MiB, () => spin(2));
    // It did reach the floor (the reader keeps up, if slowly), and no further.
    expect(settled[0]).toBeGreaterThan((3 * FLOOR) / 4 - 1);
    expect(peak[0]).toBeLessThanOrEqual(FLOOR);
  });
});

describe('the first heartbeat', () => {
  it('goes out right after the heartbeat SYN, not an interval later', async () => {
    const { peer } = await rawPeerOf('server', { heartbeat: true, heartbeatInterval: 60_000 });
    const syn = await peer.nextOf(FrameType.SYN);
    const beat = await within(peer.nextOf(FrameType.DATA, syn.streamId), 2_000, 'the first heartbeat');
    expect(beat.data.length).toBe(4);
  });

  it('gives both sessions a round trip shortly after they start', async () => {
    const on = { heartbeat: true, heartbeatInterval: 60_000 };
    const { client: c, server: s } = await sessionPair(on, on);
    for (const session of [c, s]) {
      await waitUntil('a round trip', () => session.minRtt >= 0, 2_000, 5);
      expect(session.rtt).toBeGreaterThanOrEqual(session.minRtt);
    }
  });

  it('on a 40 ms link the round trip is known after one round trip', async () => {
    const { client: c, server: s } = delayedSessions(40);
    const started = performance.now();
    await waitUntil('a round trip', () => c.minRtt >= 0 && s.minRtt >= 0, 2_000, 5);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(c.minRtt).toBeGreaterThanOrEqual(75);
  });
});

describe('streamWindowFloor', () => {
  it('defaults to 256 KiB under a 16 MiB cap', () => {
    expect(defaultSessionConfig.streamWindowFloor).toBe(FLOOR);
    expect(defaultSessionConfig.maxStreamWindow).toBe(16 * MiB);
  });

  it.each([
    [{ streamWindowFloor: INITIAL_WINDOW - 1 }, /options\.streamWindowFloor must be an integer from 65536/],
    [{ streamWindowFloor: 2 ** 31 }, /options\.streamWindowFloor must be an integer/],
    [{ streamWindowFloor: 1.5 * MiB + 0.5 }, /options\.streamWindowFloor/],
    [{ streamWindowFloor: 2 * MiB, maxStreamWindow: MiB }, /options\.streamWindowFloor must not exceed options\.maxStreamWindow \(1048576\), got 2097152/],
  ])('rejects %o, naming the field', (options, message) => {
    const error = thrown(() => resolveSessionConfig(options));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toMatch(message);
  });

  it('takes a floor up to the cap, and follows a cap set below the default floor', () => {
    expect(resolveSessionConfig({ streamWindowFloor: MiB, maxStreamWindow: MiB })).toMatchObject({ streamWindowFloor: MiB, maxStreamWindow: MiB });
    expect(resolveSessionConfig({ streamWindowFloor: INITIAL_WINDOW })).toMatchObject({ streamWindowFloor: INITIAL_WINDOW });
    expect(resolveSessionConfig({ maxStreamWindow: 128 * KiB })).toMatchObject({ streamWindowFloor: 128 * KiB, maxStreamWindow: 128 * KiB });
  });
});

