/**
 * Time-boxed fuzzing of a live server: random bytes, valid frames with
 * mutated fields, a valid handshake followed by garbage control messages,
 * and bad forward-stream headers, over real TLS connections, several at a
 * time. Meanwhile a legitimate client keeps echoing through -L.
 *
 * Every case is checked: a bad session ends (GOAWAY and/or close), a bad
 * control message ends its session with an error message first, a bad stream
 * header gets a reset while its session lives on. The process must not crash
 * (vitest fails the run on any uncaught error) and the server's counters must
 * come back to just the good client.
 *
 * Reproduce a failure with MUXTUN_FUZZ_SEED=<seed printed in the failure>.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { encodeFrame } from '../../src/muxado/frame.js';
import { ErrorCode } from '../../src/muxado/index.js';
import { u16, u32 } from '../support/bytes.js';
import { echoServer, expectEcho, freePort } from '../support/net.js';
import { RawWire, authenticatedSession, controlMessage, forward, startTunnelClient, startTunnelServer, streamEnd, type InProcessServer } from '../support/tunnel.js';
import { waitUntil, within } from '../support/wait.js';
import { seededRandom } from '../support/random.js';

const FUZZ_MS = Number(process.env.MUXTUN_FUZZ_MS ?? 12_000);
const WORKERS = 6;


class Fuzz {
  constructor(readonly random: () => number) {}
  int(max: number): number {
    return Math.floor(this.random() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
  /** One of the loopback addresses 127.0.0.2-127.0.0.251: spreads the server's per-address auth slowdown thin. */
  address(): string {
    return `127.0.0.${2 + this.int(250)}`;
  }
}


/** A valid opening: control stream with hello, a -L stream with a header and data, some housekeeping frames. */
function validFrames(f: Fuzz, token: string): Buffer[] {
  const header = Buffer.from(JSON.stringify({ host: '127.0.0.1', port: 1 + f.int(65535) }));
  return [
    encodeFrame({ type: FrameType.SYN, streamId: 3, fin: false, streamType: 1 }),
    encodeFrame({ type: FrameType.DATA, streamId: 3, fin: false, data: controlMessage({ type: 'hello', version: 1, token, clientId: randomUUID() }) }),
    encodeFrame({ type: FrameType.SYN, streamId: 5, fin: false, priority: f.int(100), streamType: 2 }),
    encodeFrame({ type: FrameType.DATA, streamId: 5, fin: false, data: Buffer.concat([u16(header.length), header, f.bytes(f.int(64))]) }),
    encodeFrame({ type: FrameType.WNDINC, streamId: 3, increment: 1 + f.int(100_000) }),
    encodeFrame({ type: FrameType.DATA, streamId: 5, fin: true, data: Buffer.alloc(0) }),
    encodeFrame({ type: FrameType.RST, streamId: 5, errorCode: f.int(8) }),
  ];
}

/** Breaks a frame sequence in one of several ways. */
function mutate(f: Fuzz, frames: Buffer[], from = 0): { bytes: Buffer; how: string } {
  const out: Buffer[] = frames.map((b) => Buffer.from(b));
  const i = from + f.int(out.length - from);
  const frame = out[i]!;
  const kind = f.int(7);
  let how: string;
  switch (kind) {
    case 0: {
      const flips = 1 + f.int(8);
      for (let n = 0; n < flips; n++) frame[f.int(frame.length)]! ^= 1 << f.int(8);
      how = `${flips} bit flips in frame ${i}`;
      break;
    }
    case 1:
      frame[3] = f.int(256);
      how = `frame ${i} type byte ${frame[3]}`;
      break;
    case 2:
      frame[2] = f.int(256);
      how = `frame ${i} flags ${frame[2]}`;
      break;
    case 3:
      frame[0] = f.int(256);
      frame[1] = f.int(256);
      how = `frame ${i} length bytes ${frame[0]},${frame[1]}`;
      break;
    case 4:
      frame.writeUInt32BE(f.pick([0, 1, 2, 4, 3, 5, 7, 0x7fffffff, f.int(2 ** 32)]) >>> 0, 4);
      how = `frame ${i} stream id ${frame.readUInt32BE(4)}`;
      break;
    case 5:
      out.splice(i, 0, f.bytes(1 + f.int(64)));
      how = `garbage inserted before frame ${i}`;
      break;
    default:
      out.splice(i + 1, 0, Buffer.from(frame));
      how = `frame ${i} sent twice`;
  }
  const bytes = Buffer.concat(out);
  const cut = f.int(4) === 0 ? f.int(bytes.length) : bytes.length;
  return { bytes: bytes.subarray(0, Math.max(1, cut)), how: cut < bytes.length ? `${how}, cut at ${cut}` : how };
}

/** A control message the server must answer with an error that ends the session. */
function badControlMessage(f: Fuzz, token: string): { bytes: Buffer; how: string } {
  const body = (value: unknown): Buffer => controlMessage(Buffer.from(JSON.stringify(value)));
  switch (f.int(8)) {
    case 0: {
      const length = 16_385 + f.int(2 ** 31);
      return { bytes: Buffer.concat([u32(length), f.bytes(f.int(32))]), how: `length prefix ${length}` };
    }
    case 1: {
      // Not JSON: 0xff never starts a JSON text.
      const payload = Buffer.concat([Buffer.from([0xff]), f.bytes(f.int(200))]);
      return { bytes: controlMessage(payload), how: `${payload.length} bytes of non-JSON` };
    }
    case 2: {
      const value = f.pick([null, 42, 'hello', [1, 2], true, []]);
      return { bytes: body(value), how: `JSON ${JSON.stringify(value)}` };
    }
    case 3: {
      const type = f.pick(['', 'HELLO', 'listen ', 'shutdown', '__proto__', 'constructor', `t${f.int(1000)}`]);
      return { bytes: body({ type, id: 1 }), how: `unknown type ${JSON.stringify(type)}` };
    }
    case 4: {
      const value = f.pick<object>([
        { type: 'listen', id: -1, bindHost: '0.0.0.0', port: 9000 },
        { type: 'listen', id: 0, bindHost: 'x'.repeat(256), port: 9000 },
        { type: 'listen', id: 0, bindHost: '0.0.0.0', port: 65536 },
        { type: 'listen', id: 1.5, bindHost: '0.0.0.0', port: 9000 },
        { type: 'listen', id: 0, bindHost: 7, port: 9000 },
        { type: 'listen', id: 0, port: '9000', bindHost: '0.0.0.0' },
      ]);
      return { bytes: body(value), how: `malformed listen ${JSON.stringify(value).slice(0, 80)}` };
    }
    case 5: {
      const value = f.pick<object>([
        { type: 'hello', version: 1, token, clientId: randomUUID() },
        { type: 'hello', version: '1', token, clientId: 'x' },
        { type: 'hello', version: 1, token: 'x'.repeat(5000), clientId: 'x' },
      ]);
      return { bytes: body(value), how: 'a second or malformed hello' };
    }
    case 6: {
      const value = f.pick<object>([
        { type: 'welcome', version: 1, sessionId: 'x' },
        { type: 'listening', id: 0, bindHost: '0.0.0.0', port: 9000 },
        { type: 'error', code: 'X', message: 'y' },
        { type: 'forward-failed', streamId: 3, code: 'X', message: 'y' },
      ]);
      return { bytes: body(value), how: `server-only message ${JSON.stringify(value)}` };
    }
    default: {
      const text = Buffer.from(`{"type":"hello","version":1,"token":${JSON.stringify(token)}`);
      return { bytes: controlMessage(text.subarray(0, 1 + f.int(text.length - 1))), how: 'truncated JSON' };
    }
  }
}

/** A forward-stream header the server must refuse. */
function badHeader(f: Fuzz, allowedPort: number): { bytes: Buffer; how: string; expect: number[] } {
  const json = (value: unknown): Buffer => {
    const text = Buffer.from(JSON.stringify(value));
    return Buffer.concat([u16(text.length), text]);
  };
  switch (f.int(6)) {
    case 0: {
      const length = 1025 + f.int(64_511);
      return { bytes: Buffer.concat([u16(length), f.bytes(f.int(16))]), how: `header length ${length}`, expect: [ErrorCode.PROTOCOL_ERROR] };
    }
    case 1: {
      const body = Buffer.concat([Buffer.from([0xff]), f.bytes(f.int(100))]);
      return { bytes: Buffer.concat([u16(body.length), body]), how: 'header not JSON', expect: [ErrorCode.PROTOCOL_ERROR] };
    }
    case 2: {
      const value = f.pick<unknown>([null, 1, 'x', [], { host: '', port: 80 }, { host: 'a', port: 0 }, { host: 'a', port: 65536 }, { host: 'a'.repeat(256), port: 80 }, { port: 80 }, { host: 5, port: 80 }]);
      return { bytes: json(value), how: `header ${JSON.stringify(value).slice(0, 60)}`, expect: [ErrorCode.PROTOCOL_ERROR] };
    }
    case 3: {
      let port = 1 + f.int(65535);
      if (port === allowedPort) port = allowedPort === 1 ? 2 : allowedPort - 1;
      const host = f.pick(['127.0.0.1', 'localhost', '10.0.0.1', 'example.invalid', '::1']);
      return { bytes: Buffer.concat([json({ host, port }), f.bytes(f.int(64))]), how: `target ${host}:${port} outside --allow-local`, expect: [ErrorCode.REFUSED_STREAM] };
    }
    case 4: {
      const length = 2 + f.int(200);
      return { bytes: Buffer.concat([u16(length), f.bytes(f.int(length - 1))]), how: `header cut short of ${length} bytes, then FIN`, expect: [ErrorCode.PROTOCOL_ERROR] };
    }
    default:
      return { bytes: Buffer.from([f.int(256)]), how: 'one byte of header, then FIN', expect: [ErrorCode.PROTOCOL_ERROR] };
  }
}

interface Context {
  server: InProcessServer;
  echoPort: number;
  counts: Record<string, number>;
  goAways: number;
}

/** Raw bytes on a fresh TLS connection: the server must end the session on its own. */
async function rawCase(ctx: Context, f: Fuzz): Promise<string> {
  const kind = f.int(3);
  let bytes: Buffer;
  let how: string;
  if (kind === 0) {
    bytes = f.bytes(1 + f.int(4096));
    how = `${bytes.length} random bytes`;
  } else {
    const token = f.int(2) === 0 ? ctx.server.token : `wrong-${f.int(1000)}`;
    const frames = validFrames(f, token);
    // kind 2: the hello stays intact, the damage comes after authentication.
    const mutated = mutate(f, frames, kind === 2 ? 2 : 0);
    bytes = mutated.bytes;
    how = `${mutated.how} (${token === ctx.server.token ? 'right' : 'wrong'} token${kind === 2 ? ', hello intact' : ''})`;
  }
  const wire = await RawWire.to(ctx.server.port, f.address());
  // In pieces, as a network would deliver them.
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + f.int(bytes.length - at);
    wire.write(bytes.subarray(at, at + n));
    at += n;
  }
  // No hello in time, a protocol error, unanswered or refused heartbeats: it ends within seconds.
  const ended = await within(wire.closed, 6_000, 'x').then(() => true, () => false);
  if (!ended) throw new Error(`the server did not end a session within 6 s after ${how}`);
  if (wire.goAway()) ctx.goAways++;
  ctx.counts[kind === 0 ? 'random bytes' : 'mutated frames']!++;
  return how;
}

/** A correct handshake, then a control message that must end the session with an error first. */
async function controlCase(ctx: Context, f: Fuzz): Promise<string> {
  const { session, control, reader } = await authenticatedSession(ctx.server, { localAddress: f.address() });
  const { bytes, how } = badControlMessage(f, ctx.server.token);
  control.write(bytes);
  const error = await reader.next('error', 5_000).catch((e: Error) => {
    throw new Error(`no error message after ${how}: ${e.message}`);
  });
  expect(error.code, how).toMatch(/^ERR_MUXTUN_(PROTOCOL|VERSION)$/);
  const end = await within(session.closed, 5_000, `the session to end after ${how}`);
  expect(end.initiator, how).toBe('remote');
  if (end.goAway) ctx.goAways++;
  ctx.counts['bad control message']!++;
  return how;
}

/** A correct handshake, then forward streams with bad headers or types: each reset, the session unharmed. */
async function headerCase(ctx: Context, f: Fuzz): Promise<string> {
  const { session, control } = await authenticatedSession(ctx.server, { localAddress: f.address() });
  const hows: string[] = [];
  const streams = 1 + f.int(4);
  for (let n = 0; n < streams; n++) {
    if (f.int(4) === 0) {
      const type = f.pick([0, 1, 3, 4, 100, 0xfffffefe]);
      const stream = session.open({ type });
      stream.write(f.bytes(f.int(32)));
      expect(await streamEnd(stream, 5_000), `stream type ${type}`).toEqual({ reset: ErrorCode.REFUSED_STREAM });
      hows.push(`stream type ${type}`);
      continue;
    }
    const { bytes, how, expect: codes } = badHeader(f, ctx.echoPort);
    const stream = session.open({ type: 2 });
    stream.end(bytes);
    const outcome = await streamEnd(stream, 5_000);
    expect(codes, `${how}: got ${JSON.stringify(outcome)}`).toContain(outcome.reset);
    hows.push(how);
  }
  // The session is still fine: a proper stream to the allowed target echoes.
  const proper = session.open({ type: 2 });
  const header = Buffer.from(JSON.stringify({ host: '127.0.0.1', port: ctx.echoPort }));
  const chunks: Buffer[] = [];
  proper.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve) => proper.once('end', resolve));
  proper.end(Buffer.concat([u16(header.length), header, Buffer.from('ok')]));
  await within(ended, 5_000, `a proper stream after ${hows.join('; ')}`);
  expect(Buffer.concat(chunks).toString()).toBe('ok');
  expect(session.isClosed).toBe(false);
  control.end();
  session.close();
  ctx.counts['bad stream header']!++;
  return hows.join('; ');
}

describe('fuzzing a live server', () => {
  it(`survives ${FUZZ_MS / 1000} s of hostile sessions while a good client keeps working`, async () => {
    const seed = Number(process.env.MUXTUN_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const echo = await echoServer();
    const server = await startTunnelServer({
      // Bad sessions must end quickly: no hello within 1 s, no heartbeat answer within 1.5 s.
      limits: { handshakeTimeoutMs: 1_000, headerTimeoutMs: 1_000, maxUnauthenticated: 1_000 },
      session: { heartbeatInterval: 500, heartbeatTolerance: 1_000 },
      // Fuzzed requests may reach nothing but the echo target, and bind nothing.
      policy: { allowLocal: [{ host: '127.0.0.1', ports: { from: echo.port, to: echo.port } }], allowRemote: [] },
    });
    const lPort = await freePort();
    await startTunnelClient(server, { local: [forward(lPort, echo.port)] });
    const ctx: Context = { server, echoPort: echo.port, counts: { 'random bytes': 0, 'mutated frames': 0, 'bad control message': 0, 'bad stream header': 0}, goAways: 0 };

    const deadline = Date.now() + FUZZ_MS;
    let goodEchoes = 0;
    const good = (async () => {
      const f = new Fuzz(seededRandom(seed ^ 0x5eed));
      while (Date.now() < deadline) {
        await expectEcho(lPort, 1 + f.int(64 * 1024));
        goodEchoes++;
      }
    })();
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      const f = new Fuzz(seededRandom(seed + w));
      let n = 0;
      while (Date.now() < deadline) {
        const which = f.int(4);
        try {
          await [rawCase, rawCase, controlCase, headerCase][which]!(ctx, f);
        } catch (error) {
          throw new Error(`fuzz seed ${seed} (MUXTUN_FUZZ_SEED=${seed}), worker ${w}, case ${n}: ${(error as Error).message}`);
        }
        n++;
      }
    });
    await Promise.all([...workers, good.catch((error: Error) => Promise.reject(new Error(`fuzz seed ${seed}: the good client failed: ${error.message}`)))]);

    // Every category ran, and the good client kept going the whole time.
    for (const [name, count] of Object.entries(ctx.counts)) {
      if (!name.startsWith('left open')) expect(count, `${name} cases (seed ${seed})`).toBeGreaterThan(0);
    }
    expect(goodEchoes).toBeGreaterThan(10);
    expect(ctx.goAways).toBeGreaterThan(0);
    // Nothing is left over but the good client's session.
    await waitUntil(`only the good client to remain (seed ${seed})`, () => {
      const stats = server.server.stats();
      return stats.sessions === 1 && stats.unauthenticated === 0 && stats.streams === 0 && stats.remoteListeners === 0;
    }, 10_000);
    await expectEcho(lPort);
  }, FUZZ_MS + 60_000);
});
