/**
 * Our engine against the Go reference (inconshreveable/muxado) over real TCP,
 * in every direction: who dials (client/server session) and who opens streams
 * are varied independently. Bytes are checked by sha256 on both sides.
 *
 * The Go side is peer/main.go, driven through go-peer.ts; reference.test.ts
 * pins the raw bytes the reference sends, which explains several expectations here.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, server, ErrorCode, MuxadoError } from '../../src/muxado/index.js';
import { patternBytes } from '../support/bytes.js';
import { sha256 } from '../support/net.js';
import { currentScope } from '../support/scope.js';
import {
  requireGoReference,
  runGoClient,
  skipInterop,
  startGoEchoClient,
  startGoServer,
  StreamTypes,
  type GoServer,
  type PeerEvent,
  peerEvents,
  waitForEvent,
} from './go-peer.js';

type Session = ReturnType<typeof client>;
type MuxStream = ReturnType<Session['open']>;

const MiB = 1024 * 1024;
/** The reference drops a peer that answers no heartbeat for 3 s + 10 s: idle well past that. */
const IDLE_MS = 20_000;

// ---------------------------------------------------------------- helpers

interface Received {
  bytes: number;
  sha256: string;
}

/** Reads a stream to its end, hashing as it goes (no 'data' listener remains attached afterwards). */
function readHashed(stream: MuxStream, keep = false): Promise<Received & { data?: Buffer }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
      if (keep) chunks.push(chunk);
    });
    stream.once('end', () => resolve({ bytes, sha256: hash.digest('hex'), ...(keep ? { data: Buffer.concat(chunks) } : {}) }));
    stream.once('error', reject);
  });
}

/** Writes data honouring backpressure, then end() (FIN). */
async function writeAndFinish(stream: MuxStream, data: Buffer, chunkSize = 64 * 1024): Promise<void> {
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    if (!stream.write(data.subarray(offset, offset + chunkSize))) {
      await once(stream, 'drain'); // rejects if the stream errors meanwhile
    }
  }
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}

/** Opens `count` streams at once; each sends `bytes` while reading the echo; checks the digests. */
async function sendAndVerifyEcho(session: Session, count: number, bytes: number, type?: number): Promise<MuxStream[]> {
  const streams: MuxStream[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const data = patternBytes(bytes, i + 1);
      const stream = session.open(type === undefined ? {} : { type });
      streams.push(stream);
      const [, echoed] = await Promise.all([writeAndFinish(stream, data), readHashed(stream)]);
      expect(echoed.bytes, `stream ${stream.id}: echoed length`).toBe(bytes);
      expect(echoed.sha256, `stream ${stream.id}: echoed sha256`).toBe(sha256(data));
    }),
  );
  return streams;
}

interface EchoRecord {
  stream: MuxStream;
  /** What arrived from the peer (and was echoed), once the peer's FIN came. */
  received: Promise<Received>;
  errors: Error[];
}

/** Echoes a stream back to its opener (pipe sends our FIN after the peer's), recording what came. */
function echo(stream: MuxStream, records: EchoRecord[]): void {
  const errors: Error[] = [];
  stream.on('error', (err) => errors.push(err));
  const received = new Promise<Received>((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    stream.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
  });
  stream.pipe(stream);
  records.push({ stream, received, errors });
}

/** Tracks whether a promise has settled, without awaiting it. */
function settled(promise: Promise<unknown>): { readonly done: boolean } {
  const state = { done: false };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
}

interface TsServer {
  port: number;
  sessions: Session[];
  /** Streams the Go side opened, echoed back. */
  echoed: EchoRecord[];
  nextSession(): Promise<Session>;
}

/** Our muxado server on 127.0.0.1 that echoes every stream the peer opens. */
async function startTsServer(): Promise<TsServer> {
  const sessions: Session[] = [];
  const echoed: EchoRecord[] = [];
  const waiting: Array<(s: Session) => void> = [];
  const listener = net.createServer((socket) => {
    const session = server(socket);
    sessions.push(session);
    session.on('stream', (stream) => echo(stream, echoed));
    waiting.shift()?.(session);
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  currentScope().add(() => {
    for (const s of sessions) s.close();
    listener.close();
  });
  return {
    port: (listener.address() as net.AddressInfo).port,
    sessions,
    echoed,
    nextSession: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

/** Our muxado client dialled to a port; `remote` is how the Go server names this connection. */
async function connectTsClient(port: number): Promise<{ session: Session; remote: string }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const session = client(socket);
  currentScope().add(() => session.close());
  return { session, remote: `${socket.localAddress}:${socket.localPort}` };
}

// ---------------------------------------------------------------- suite

describe.skipIf(skipInterop())('interop with the Go reference (inconshreveable/muxado)', () => {
  let goServer: GoServer;

  /** Events the Go server printed about streams of one of our connections. */
  const goStreamEnds = (remote: string): PeerEvent[] =>
    peerEvents(goServer.process).filter((e) => e.event === 'stream-end' && e.remote === remote);

  beforeAll(async () => {
    console.info(`interop: ${requireGoReference().reason}`);
    goServer = await startGoServer(); // builds the peer first
  }, 200_000);

  afterAll(async () => {
    await goServer?.stop();
  });

  it("the reference's HalfClose() then Close() (two empty DATA+FIN) ends our stream cleanly", async () => {
    // Every Go echo here ends that way, as typical Go code does (`defer str.Close()`
    // after HalfClose): both FINs usually arrive in one TCP segment, before our
    // application has read to the end. See reference.test.ts for the raw frames.
    const { session } = await connectTsClient(goServer.port);
    const stream = session.open();
    const [, echoed] = await Promise.all([writeAndFinish(stream, Buffer.from('hello')), readHashed(stream, true)]);
    expect(echoed.data!.toString()).toBe('hello');
    await sendAndVerifyEcho(session, 1, 1000);
    expect(session.isClosed).toBe(false);
  });

  it('Go client -> our server: 16 parallel streams of 4 MiB each way, sha256 checked on both sides', async () => {
    const ts = await startTsServer();
    const run = await runGoClient(ts.port, { streams: 16, bytes: 4 * MiB, timeoutMs: 90_000 });

    expect(run.exit.code, run.process.tail()).toBe(0);
    expect(run.result?.ok).toBe(true);
    expect(run.result?.results).toHaveLength(16);

    // What our server received on each stream is what the Go client sent
    // (the Go client hashed its own payload and checked the echo against it).
    expect(ts.sessions).toHaveLength(1);
    const byId = new Map(ts.echoed.map((r) => [r.stream.id, r]));
    expect([...byId.keys()].sort((a, b) => a - b)).toEqual(run.result!.results.map((r) => r.id).sort((a, b) => a - b));
    for (const { id, sha256: sent } of run.result!.results) {
      const record = byId.get(id)!;
      expect(id % 2, `stream ${id} was opened by the client: odd id`).toBe(1);
      expect(record.stream.type).toBe(0);
      await expect(record.received).resolves.toEqual({ bytes: 4 * MiB, sha256: sent });
      expect(record.errors, `stream ${id}`).toEqual([]);
    }
    // The heartbeat stream (id 3, an extension) never reached the application.
    expect(byId.has(3)).toBe(false);

    // The Go client then Close()d the session: the end is the peer's, and a
    // clean one, although the reference's GOAWAY is cut short (its header
    // claims debug bytes it never sends) before the connection closes.
    const end = await ts.sessions[0]!.closed;
    expect(end.initiator).toBe('remote');
    expect(end.error).toBeUndefined();
    expect(end.goAway).toMatchObject({ errorCode: 0 });
  }, 120_000);

  it('our client -> Go server: 16 parallel streams of 4 MiB each way, sha256 checked', async () => {
    const { session, remote } = await connectTsClient(goServer.port);
    const streams = await sendAndVerifyEcho(session, 16, 4 * MiB);

    expect(new Set(streams.map((s) => s.id)).size).toBe(16);
    for (const s of streams) expect(s.id % 2, `stream ${s.id}`).toBe(1);
    // The reference's view: every stream read and echoed in full, without error.
    await goServer.process.waitFor('16 stream-end events', () => (goStreamEnds(remote).length >= 16 ? true : undefined), 15_000);
    for (const e of goStreamEnds(remote)) {
      expect(e, JSON.stringify(e)).toMatchObject({ read: 4 * MiB, written: 4 * MiB, type: 0 });
      expect(e.error, JSON.stringify(e)).toBeUndefined();
    }
    expect(session.isClosed).toBe(false);
  }, 120_000);

  it('stream types travel in the SYN both ways', async () => {
    const { session, remote } = await connectTsClient(goServer.port);
    const [stream] = await sendAndVerifyEcho(session, 1, 1000, 5);
    const ev = await waitForEvent(goServer.process, 'the typed stream', (e) => e.event === 'stream-end' && e.remote === remote && e.id === stream!.id);
    expect(ev.type).toBe(5);

    const ts = await startTsServer();
    const run = await runGoClient(ts.port, { streams: 2, bytes: 1000, type: 6 });
    expect(run.exit.code, run.process.tail()).toBe(0);
    expect(ts.echoed.map((r) => r.stream.type)).toEqual([6, 6]);
  });

  it('Go server opens 16 streams towards our client, which echoes them', async () => {
    const { session } = await connectTsClient(goServer.port);
    const echoed: EchoRecord[] = [];
    session.on('stream', (stream) => echo(stream, echoed));

    const control = session.open({ type: StreamTypes.CONTROL });
    control.end(`16 ${MiB}\n`);
    const reply = await readHashed(control, true);
    const result = JSON.parse(reply.data!.toString()) as { ok: boolean; error?: string; results: { id: number; sha256: string }[] };

    expect(result.ok, result.error).toBe(true);
    expect(result.results).toHaveLength(16);
    const byId = new Map(echoed.map((r) => [r.stream.id, r]));
    for (const { id, sha256: sent } of result.results) {
      expect(id % 2, `stream ${id} was opened by the server: even id`).toBe(0);
      await expect(byId.get(id)!.received).resolves.toEqual({ bytes: MiB, sha256: sent });
      expect(byId.get(id)!.errors, `stream ${id}`).toEqual([]);
    }
  }, 60_000);

  it('our server opens 16 streams towards a Go client, which echoes them', async () => {
    const ts = await startTsServer();
    const sessionP = ts.nextSession();
    const goClient = await startGoEchoClient(ts.port);
    const session = await sessionP;

    const streams = await sendAndVerifyEcho(session, 16, MiB);
    for (const s of streams) expect(s.id % 2, `stream ${s.id}`).toBe(0);

    // Our close() reaches the Go client as a clean end; it then exits by itself.
    session.close();
    await waitForEvent(goClient, 'the echo-client session end', (e) => e.event === 'session-end');
    expect((await goClient.exited).code).toBe(0);
  }, 60_000);

  it(
    `a session idle for ${IDLE_MS / 1000} s stays alive both ways (heartbeats answered on both sides)`,
    async () => {
      // Both directions at once, so the suite spends the idle time once.
      const goDials = (async () => {
        const ts = await startTsServer();
        const sessionP = ts.nextSession();
        const runP = runGoClient(ts.port, { streams: 4, bytes: MiB, idleMs: IDLE_MS, timeoutMs: 50_000 });
        const session = await sessionP;
        const closed = settled(session.closed);
        // Our session must still be up when the Go client's streams arrive after the idle period.
        const aliveAtFirstStream = new Promise<boolean>((resolve) => session.once('stream', () => resolve(!closed.done)));
        const run = await runP;
        // The Go client fails if its session died during the idle period (our heartbeats unanswered or ours not sent).
        expect(run.exit.code, run.process.tail()).toBe(0);
        expect(run.result?.ok).toBe(true);
        expect(run.result?.idleMs).toBe(IDLE_MS);
        expect(await aliveAtFirstStream).toBe(true);
      })();

      const weDial = (async () => {
        const { session, remote } = await connectTsClient(goServer.port);
        const closed = settled(session.closed);
        await sleep(IDLE_MS); // the protocol is about time here: nothing but heartbeats flows
        expect(closed.done, 'our session ended during the idle period').toBe(false);
        expect(peerEvents(goServer.process).filter((e) => e.event === 'session-end' && e.remote === remote)).toEqual([]);
        await sendAndVerifyEcho(session, 4, MiB);
        expect(closed.done).toBe(false);
      })();

      await Promise.all([goDials, weDial]);
    },
    60_000,
  );

  it('an RST code we send reaches the reference (CANCEL)', async () => {
    const { session, remote } = await connectTsClient(goServer.port);
    const stream = session.open();
    stream.on('error', () => {});
    stream.write(Buffer.from('ping'));
    // Wait for the echo so the Go side is inside its copy loop when the RST lands.
    await once(stream, 'data');
    stream.reset(ErrorCode.CANCEL);

    const ev = await waitForEvent(goServer.process, 'the reset stream', (e) => e.event === 'stream-end' && e.remote === remote && e.id === stream.id);
    expect(ev.error).toBe(`Stream reset by peer with error ${ErrorCode.CANCEL}`);
    expect(session.isClosed).toBe(false);
  });

  it("the reference's RST reaches our stream with its code (STREAM_CLOSED for DATA after its Close())", async () => {
    const { session, remote } = await connectTsClient(goServer.port);
    const stream = session.open({ type: StreamTypes.CLOSE });
    const error = new Promise<unknown>((resolve) => stream.once('error', resolve));
    stream.resume();
    await once(stream, 'end'); // the reference's Close() sent FIN
    await waitForEvent(goServer.process, 'the closed stream', (e) => e.event === 'stream-end' && e.remote === remote && e.id === stream.id);
    stream.write(Buffer.from('too late'));

    const err = await error;
    expect(err).toBeInstanceOf(MuxadoError);
    expect(err).toMatchObject({ code: 'ERR_MUXADO_STREAM_RESET', errorCode: ErrorCode.STREAM_CLOSED, remote: true });
    expect(session.isClosed).toBe(false);
  });

  it('our GOAWAY message reaches the reference when we close', async () => {
    const { session, remote } = await connectTsClient(goServer.port);
    await sendAndVerifyEcho(session, 1, 100);
    session.goAway(ErrorCode.NO_ERROR, 'muxtun says goodbye');
    session.close();
    const end = await session.closed;
    expect(end).toMatchObject({ initiator: 'local' });
    expect(end.error).toBeUndefined();
    const ev = await waitForEvent(goServer.process, 'our session end', (e) => e.event === 'session-end' && e.remote === remote);
    expect(ev.debug).toBe('muxtun says goodbye');
  });
});
