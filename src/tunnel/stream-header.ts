import type { Duplex } from 'node:stream';
import { ErrorCode, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import type { TunnelLogger } from './logger.js';
import { parseAddressPort } from './proxy-protocol.js';

/** The largest forward-stream header either side accepts. */
export const MAX_STREAM_HEADER = 1024;

/** What a client-opened -L stream asks the server to dial. */
export interface LocalForwardHeader {
  host: string;
  port: number;
  /** The conn id, when the session resumes (docs/protocol.md). */
  conn?: number;
  /** Who connected to the -L listener, `address:port` (for serve --proxy-protocol). Optional: older clients do not send it. */
  peer?: string;
  /** The listener's address that connection reached, `address:port`. */
  dest?: string;
}

/** Which -R forward a server-opened stream belongs to, and who connected. */
export interface RemoteForwardHeader {
  forward: number;
  /** Who connected, `address:port` as the server's socket says (not checked: older servers may send anything). */
  peer: string;
  /** The server's listener address that connection reached, `address:port` (for connect --proxy-protocol). Optional: older servers do not send it. */
  dest?: string;
  /** Reverse dynamic -R only: the target the SOCKS client asked for; this side dials it and writes a dial reply first. */
  host?: string;
  port?: number;
  /** The conn id, when the session resumes. */
  conn?: number;
}

/** A stream that carries an existing conn again after a resume. */
export interface ResumeStreamHeader {
  conn: number;
}

/** Encodes a header: u16 big-endian length, then UTF-8 JSON. Data may follow at once. */
export function encodeStreamHeader(header: LocalForwardHeader | RemoteForwardHeader | ResumeStreamHeader): Buffer {
  return encodeFramedJson(header);
}

/** u16 big-endian length, then UTF-8 JSON: stream headers and DYNAMIC dial replies. */
export function encodeFramedJson(value: object): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  if (body.length > MAX_STREAM_HEADER) throw new TunnelError(TunnelErrorCode.PROTOCOL, `stream header of ${body.length} bytes exceeds ${MAX_STREAM_HEADER}`);
  const out = Buffer.allocUnsafe(2 + body.length);
  out.writeUInt16BE(body.length, 0);
  body.copy(out, 2);
  return out;
}

/**
 * Reads one header from the start of a stream; bytes after it are put back
 * for whoever reads next. Rejects on a bad or oversized header, on end of
 * stream before it, and after `timeoutMs`.
 */
export function readStreamHeader(stream: Duplex, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const fail = (message: string): void => {
      cleanup();
      reject(new TunnelError(TunnelErrorCode.PROTOCOL, message));
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        if (buffered.length < 2) continue;
        const length = buffered.readUInt16BE(0);
        if (length > MAX_STREAM_HEADER) return fail(`stream header of ${length} bytes exceeds ${MAX_STREAM_HEADER}`);
        if (buffered.length < 2 + length) continue;
        cleanup();
        const rest = buffered.subarray(2 + length);
        if (rest.length > 0) stream.unshift(rest);
        try {
          resolve(JSON.parse(buffered.subarray(2, 2 + length).toString('utf8')));
        } catch {
          reject(new TunnelError(TunnelErrorCode.PROTOCOL, 'stream header is not valid JSON'));
        }
        return;
      }
    };
    const onEnd = (): void => fail('the stream ended before its header');
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const timer = setTimeout(() => fail(`no stream header within ${timeoutMs} ms`), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onEnd);
  });
}

/**
 * A forward stream's header, read as `readStreamHeader` does; when it is bad,
 * missing or late, the stream is reset (PROTOCOL_ERROR), a warning says what
 * was bad (`what`: "-L stream header"...), and the result is undefined.
 */
export async function readHeaderOrReset(stream: Stream, timeoutMs: number, logger: TunnelLogger, what: string): Promise<unknown> {
  try {
    return await readStreamHeader(stream, timeoutMs);
  } catch (error) {
    logger.warn({ error: describeError(error) }, `bad ${what}; resetting the stream`);
    stream.reset(ErrorCode.PROTOCOL_ERROR);
    return undefined;
  }
}

export function isLocalForwardHeader(value: unknown): value is LocalForwardHeader {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return isHost(v.host) && isPort(v.port) && isOptionalConnId(v.conn) && isOptionalAddressPort(v.peer) && isOptionalAddressPort(v.dest);
}

export function isRemoteForwardHeader(value: unknown): value is RemoteForwardHeader {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const target = v.host === undefined && v.port === undefined ? true : isHost(v.host) && isPort(v.port);
  return Number.isInteger(v.forward) && (v.forward as number) >= 0 && typeof v.peer === 'string' && v.peer.length <= 300 && isOptionalConnId(v.conn) && isOptionalAddressPort(v.dest) && target;
}

export function isResumeStreamHeader(value: unknown): value is ResumeStreamHeader {
  return typeof value === 'object' && value !== null && isConnId((value as Record<string, unknown>).conn);
}

const isConnId = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0 && (value as number) <= 0x7fffffff;
const isOptionalConnId = (value: unknown): boolean => value === undefined || isConnId(value);
/** A new address field is an IP address and a port, bounded, or absent: a bad one makes the header malformed (that stream is reset). */
const isOptionalAddressPort = (value: unknown): boolean => value === undefined || (typeof value === 'string' && parseAddressPort(value) !== null);
const isHost = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= 255;
const isPort = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
