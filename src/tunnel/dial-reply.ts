/**
 * The dial result of a DYNAMIC stream (docs/protocol.md): the side that
 * dials writes it at the start of its direction, before any forwarded
 * byte, framed like a stream header (u16 length, UTF-8 JSON). A SOCKS
 * client is told success only after the dial succeeded, and the matching
 * SOCKS error otherwise.
 */
import { errnoCode } from '../util/errors.js';
import { encodeFramedJson } from './stream-header.js';

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
