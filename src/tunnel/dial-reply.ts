/**
 * The dial result of a DYNAMIC stream (docs/protocol.md): the side that
 * dials writes it at the start of its direction, before any forwarded
 * byte, framed like a stream header (u16 length, UTF-8 JSON). A SOCKS
 * client is told success only after the dial succeeded, and the matching
 * SOCKS error otherwise.
 */
import type net from 'node:net';
import { ErrorCode, StreamResetError, type Stream } from '../muxado/index.js';
import { describeError, errnoCode } from '../util/errors.js';
import { dialTarget } from './dial.js';
import { encodeFramedJson, readStreamHeader } from './stream-header.js';
import type { DialTimes } from './tunnel-stats.js';

/** Why a dial did not happen or failed. */
export type DialFailure = 'policy' | 'refused' | 'unreachable' | 'not-found' | 'timeout' | 'failed';
const FAILURES: ReadonlySet<string> = new Set<DialFailure>(['policy', 'refused', 'unreachable', 'not-found', 'timeout', 'failed']);

export type DialReply = { ok: true } | { ok: false; error: DialFailure; message: string };

export function encodeDialReply(reply: DialReply): Buffer {
  return encodeFramedJson(reply.ok ? { ok: true } : { error: reply.error, message: reply.message.slice(0, 500) });
}

/** The reply a peer sent, or null when it is malformed. */
export function toDialReply(value: unknown): DialReply | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (v.ok === true) return { ok: true };
  if (typeof v.error === 'string' && FAILURES.has(v.error) && typeof v.message === 'string' && v.message.length <= 1000) {
    return { ok: false, error: v.error as DialFailure, message: v.message };
  }
  return null;
}

/** Sorts a failed net.connect by what a SOCKS client should be told. */
export function classifyDialError(error: unknown): DialFailure {
  switch (errnoCode(error)) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return 'not-found';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    case 'ETIMEDOUT':
    case 'ERR_MUXTUN_DIAL':
      // dialTarget's own timer raises ERR_MUXTUN_DIAL ("no answer within …").
      return 'timeout';
    default:
      return 'failed';
  }
}

export type DialOutcome = { ok: true } | { ok: false; failure: DialFailure; message: string };

/**
 * The asking side: reads the dial reply at the start of the stream. On a
 * failure the stream is ended (or reset, when the reply is missing or
 * malformed) and the outcome says why; on success forwarded bytes follow.
 */
export async function awaitDialReply(stream: Stream, timeoutMs: number): Promise<DialOutcome> {
  let raw: unknown;
  try {
    raw = await readStreamHeader(stream, timeoutMs);
  } catch (error) {
    stream.reset(ErrorCode.CANCEL);
    if (error instanceof StreamResetError && error.remote && error.errorCode === ErrorCode.REFUSED_STREAM) {
      return { ok: false, failure: 'failed', message: 'the other side refused the stream: it is at a limit, or too old for dynamic forwarding' };
    }
    return { ok: false, failure: 'failed', message: `no dial result: ${describeError(error)}` };
  }
  const reply = toDialReply(raw);
  if (reply === null) {
    stream.reset(ErrorCode.PROTOCOL_ERROR);
    return { ok: false, failure: 'failed', message: 'malformed dial result' };
  }
  if (!reply.ok) {
    stream.end();
    stream.resume();
    return { ok: false, failure: reply.error, message: reply.message };
  }
  return { ok: true };
}

/**
 * The dialling side: checks `refusal` (a policy's reason, or null), dials,
 * and writes the dial reply first on the stream. On success `carry` gets
 * the socket, right after the reply was written; on failure the stream is
 * ended behind the reply and `refused` hears why.
 */
export function dialAndReply(
  stream: Stream,
  options: { host: string; port: number; timeoutMs: number; refusal: string | null; refused(reply: DialOutcome & { ok: false }): void; carry(socket: net.Socket): void; dialTimes?: DialTimes },
): void {
  const refuse = (failure: DialFailure, message: string): void => {
    options.refused({ ok: false, failure, message });
    stream.end(encodeDialReply({ ok: false, error: failure, message }));
    // The asker closes its side once it read the reply; what it sent meanwhile is dropped.
    stream.resume();
  };
  if (options.refusal !== null) return refuse('policy', options.refusal);
  const target = `${options.host}:${options.port}`;
  dialTarget(stream, {
    host: options.host,
    port: options.port,
    timeoutMs: options.timeoutMs,
    keepStream: true,
    ...(options.dialTimes ? { dialTimes: options.dialTimes } : {}),
    onFailed: (error) => refuse(classifyDialError(error), `dialling ${target} failed: ${describeError(error)}`),
    onConnected: (socket) => {
      stream.write(encodeDialReply({ ok: true }));
      options.carry(socket);
    },
  });
}
