/**
 * The control socket's protocol: JSON lines over a Unix socket. The client
 * writes one request per line and reads one response per line; responses
 * echo the request's `id` and may come in another order than the requests
 * when several are in flight. docs/control.md is the reference for scripts.
 *
 *   → {"id":1,"method":"forward.add","params":{"kind":"R","spec":"9000:localhost:3000"}}
 *   ← {"id":1,"ok":true,"result":{"forward":{…}}}
 *   ← {"id":2,"ok":false,"error":{"code":"ERR_MUXTUN_POLICY","message":"…"}}
 *
 * Every request is validated here, completely, before anything acts on it:
 * a malformed one gets an error response and changes nothing. Unknown keys
 * are errors, not ignored, so a misspelt parameter cannot pass as absent.
 */
import { ControlErrorCode } from './errors.js';
import type {
  ForwardChangeResult,
  ForwardKind,
  ForwardListResult,
  SessionCloseResult,
  SessionListResult,
  StatusResult,
} from './results.js';

/** Version of this protocol, in docs/control.md. Bumped only for incompatible changes. */
export const CONTROL_PROTOCOL_VERSION = 1;

/** Longest request line accepted, in bytes without the newline; a longer one is refused and its connection closed. */
export const MAX_REQUEST_LINE_BYTES = 64 * 1024;
/** Longest string id accepted. */
export const MAX_ID_LENGTH = 128;
/** Longest forward spec, forward id or session id accepted. */
export const MAX_NAME_LENGTH = 1024;
/** Longest `session.close` reason accepted. */
export const MAX_REASON_LENGTH = 256;

/** A request's id: a string or a safe integer, echoed in its response. `null` in a response answers a request whose id could not be read. */
export type RequestId = string | number;

export interface ForwardAddParams {
  kind: ForwardKind;
  /** As on the command line: `[bind:]port:host:hostport` for L and R, `[bind:]port` for D and reverse-dynamic R. */
  spec: string;
}

export interface ForwardRemoveParams {
  /** A forward's id, or its spec as given (`8080:localhost:80`; with the kind, `-L 8080:localhost:80`). */
  forward: string;
}

export interface SessionCloseParams {
  /** A session id from `session.list`. */
  session: string;
  /** Shown to the client and logged; at most {@link MAX_REASON_LENGTH} characters. */
  reason?: string;
}

/** Parameters of each method; `undefined` for methods that take none. */
export interface ControlParams {
  status: undefined;
  'forward.list': undefined;
  'forward.add': ForwardAddParams;
  'forward.remove': ForwardRemoveParams;
  'session.list': undefined;
  'session.close': SessionCloseParams;
}

/** Result of each method. */
export interface ControlResults {
  status: StatusResult;
  'forward.list': ForwardListResult;
  'forward.add': ForwardChangeResult;
  'forward.remove': ForwardChangeResult;
  'session.list': SessionListResult;
  'session.close': SessionCloseResult;
}

export type ControlMethod = keyof ControlParams;

export const CONTROL_METHODS: readonly ControlMethod[] = ['status', 'forward.list', 'forward.add', 'forward.remove', 'session.list', 'session.close'];

/** A validated request: narrow on `method` to get typed `params`. */
export type ControlRequest = {
  [M in ControlMethod]: { id: RequestId; method: M; params: ControlParams[M] };
}[ControlMethod];

/** The error part of a failed response. */
export interface ControlErrorBody {
  code: string;
  message: string;
}

export type ControlResponse =
  | { id: RequestId; ok: true; result: unknown }
  | { id: RequestId | null; ok: false; error: ControlErrorBody };

/** What {@link parseRequest} makes of a line: a request, or the error response to send. */
export type ParsedRequest = { ok: true; request: ControlRequest } | { ok: false; response: ControlResponse & { ok: false } };

/** Why a value is not a request; becomes a BAD_REQUEST or UNKNOWN_METHOD response. */
class Invalid {
  constructor(
    readonly code: string,
    readonly message: string,
  ) {}
}

/**
 * Validates one request line (without its newline). Never throws: any input
 * gives either a typed request or the error response to send back, with the
 * request's id when it could be read.
 */
export function parseRequest(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return refuse(null, ControlErrorCode.BAD_REQUEST, 'the request is not valid JSON');
  }
  if (!isPlainObject(value)) return refuse(null, ControlErrorCode.BAD_REQUEST, 'the request must be a JSON object');
  const id = readId(value);
  if (id instanceof Invalid) return refuse(null, id.code, id.message);
  const checked = checkKeys(value, ['id', 'method', 'params'], 'the request');
  if (checked instanceof Invalid) return refuse(id, checked.code, checked.message);
  const { method } = value;
  if (typeof method !== 'string') return refuse(id, ControlErrorCode.BAD_REQUEST, '"method" must be a string');
  if (!(CONTROL_METHODS as readonly string[]).includes(method)) {
    return refuse(id, ControlErrorCode.UNKNOWN_METHOD, `unknown method ${JSON.stringify(method.slice(0, 64))} (known: ${CONTROL_METHODS.join(', ')})`);
  }
  const params = readParams(method as ControlMethod, value.params);
  if (params instanceof Invalid) return refuse(id, params.code, `${method}: ${params.message}`);
  return { ok: true, request: { id, method, params } as ControlRequest };
}

/** One response line, newline included. */
export function encodeResponse(response: ControlResponse): string {
  return `${JSON.stringify(response)}\n`;
}

/** One request line, newline included (what the client writes). */
export function encodeRequest<M extends ControlMethod>(id: RequestId, method: M, params: ControlParams[M]): string {
  return `${JSON.stringify(params === undefined ? { id, method } : { id, method, params })}\n`;
}

function refuse(id: RequestId | null, code: string, message: string): ParsedRequest {
  return { ok: false, response: { id, ok: false, error: { code, message } } };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readId(request: Record<string, unknown>): RequestId | Invalid {
  const { id } = request;
  if (typeof id === 'string' && id.length <= MAX_ID_LENGTH) return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  return new Invalid(ControlErrorCode.BAD_REQUEST, `"id" must be a string of at most ${MAX_ID_LENGTH} characters or an integer`);
}

/** Own keys only, so `__proto__` or `toString` in the JSON are unknown keys, not Object.prototype's. */
function checkKeys(object: Record<string, unknown>, allowed: readonly string[], what: string): Invalid | undefined {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      return new Invalid(ControlErrorCode.BAD_REQUEST, `${what} has an unknown key ${JSON.stringify(key.slice(0, 64))} (allowed: ${allowed.join(', ')})`);
    }
  }
  return undefined;
}

function readParams(method: ControlMethod, params: unknown): ControlParams[ControlMethod] | Invalid {
  switch (method) {
    case 'status':
    case 'forward.list':
    case 'session.list':
      return noParams(params);
    case 'forward.add': {
      const object = paramsObject(params, ['kind', 'spec']);
      if (object instanceof Invalid) return object;
      const { kind } = object;
      if (kind !== 'L' && kind !== 'R' && kind !== 'D') return new Invalid(ControlErrorCode.BAD_REQUEST, '"kind" must be "L", "R" or "D"');
      const spec = name(object, 'spec', MAX_NAME_LENGTH);
      return spec instanceof Invalid ? spec : { kind, spec };
    }
    case 'forward.remove': {
      const object = paramsObject(params, ['forward']);
      if (object instanceof Invalid) return object;
      const forward = name(object, 'forward', MAX_NAME_LENGTH);
      return forward instanceof Invalid ? forward : { forward };
    }
    case 'session.close': {
      const object = paramsObject(params, ['session', 'reason']);
      if (object instanceof Invalid) return object;
      const session = name(object, 'session', MAX_NAME_LENGTH);
      if (session instanceof Invalid) return session;
      if (object.reason === undefined) return { session };
      if (typeof object.reason !== 'string' || object.reason.length > MAX_REASON_LENGTH || hasControlCharacters(object.reason)) {
        return new Invalid(ControlErrorCode.BAD_REQUEST, `"reason" must be a string of at most ${MAX_REASON_LENGTH} characters without control characters`);
      }
      return { session, reason: object.reason };
    }
  }
}

function noParams(params: unknown): undefined | Invalid {
  if (params === undefined) return undefined;
  if (isPlainObject(params) && Object.keys(params).length === 0) return undefined;
  return new Invalid(ControlErrorCode.BAD_REQUEST, 'takes no parameters ("params" must be absent or {})');
}

function paramsObject(params: unknown, allowed: readonly string[]): Record<string, unknown> | Invalid {
  if (!isPlainObject(params)) return new Invalid(ControlErrorCode.BAD_REQUEST, `"params" must be an object with ${allowed.join(', ')}`);
  return checkKeys(params, allowed, '"params"') ?? params;
}

/** A required non-empty string parameter without control characters (it ends up in logs and terminals). */
function name(object: Record<string, unknown>, key: string, maxLength: number): string | Invalid {
  const value = object[key];
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength || hasControlCharacters(value)) {
    return new Invalid(ControlErrorCode.BAD_REQUEST, `"${key}" must be a non-empty string of at most ${maxLength} characters without control characters`);
  }
  return value;
}

function hasControlCharacters(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(text);
}
