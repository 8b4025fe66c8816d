/**
 * Messages of the tunnel's control stream (docs/protocol.md). Each travels
 * as a u32 big-endian length and that many bytes of UTF-8 JSON.
 */

export const PROTOCOL_VERSION = 1;
/** The largest control message either side accepts. */
export const MAX_CONTROL_MESSAGE = 16 * 1024;

/** muxado stream types of the tunnel protocol. */
export const StreamKind = {
  /** Client-opened, the first and only one: hello, auth, -R requests. */
  CONTROL: 1,
  /** Client-opened per -L connection; a header names the target. */
  LOCAL_FORWARD: 2,
  /** Server-opened per connection to a -R listener; a header names the forward. */
  REMOTE_FORWARD: 3,
} as const;

export interface HelloMessage {
  type: 'hello';
  version: number;
  token: string;
  /** Random per `connect` process, kept across reconnects: lets the server replace a stale session. */
  clientId: string;
}

export interface WelcomeMessage {
  type: 'welcome';
  version: number;
  sessionId: string;
}

export interface ListenMessage {
  type: 'listen';
  /** Chosen by the client; names the forward in replies and stream headers. */
  id: number;
  bindHost: string;
  port: number;
}

export interface ListeningMessage {
  type: 'listening';
  id: number;
  bindHost: string;
  port: number;
}

export interface ErrorMessage {
  type: 'error';
  /** The listen request this answers; absent for session-wide errors (then the session ends). */
  id?: number;
  code: string;
  message: string;
}

/** The server could not serve one -L stream: says why before resetting it. */
export interface ForwardFailedMessage {
  type: 'forward-failed';
  streamId: number;
  code: string;
  message: string;
}

export type ClientMessage = HelloMessage | ListenMessage;
export type ServerMessage = WelcomeMessage | ListeningMessage | ErrorMessage | ForwardFailedMessage;
export type ControlMessage = ClientMessage | ServerMessage;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown, max = 1024): value is string => typeof value === 'string' && value.length <= max;
const isUint = (value: unknown, max = 0xffffffff): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
const isPort = (value: unknown): value is number => isUint(value, 65535);

const CLIENT_TYPES: ReadonlySet<string> = new Set<ClientMessage['type']>(['hello', 'listen']);
const SERVER_TYPES: ReadonlySet<string> = new Set<ServerMessage['type']>(['welcome', 'listening', 'error', 'forward-failed']);

/** A message a client may send (what the server reads), else a reason. */
export function validateClientMessage(value: unknown): ClientMessage | string {
  const message = validateMessage(value);
  if (typeof message === 'string') return message;
  return CLIENT_TYPES.has(message.type) ? (message as ClientMessage) : `a client may not send "${message.type}"`;
}

/** A message a server may send (what the client reads), else a reason. */
export function validateServerMessage(value: unknown): ServerMessage | string {
  const message = validateMessage(value);
  if (typeof message === 'string') return message;
  return SERVER_TYPES.has(message.type) ? (message as ServerMessage) : `a server may not send "${message.type}"`;
}

/** Returns the message if it has a known type and well-formed fields, else a reason. */
export function validateMessage(value: unknown): ControlMessage | string {
  if (!isRecord(value)) return 'a control message must be a JSON object';
  switch (value.type) {
    case 'hello':
      if (!isUint(value.version)) return 'hello.version must be a number';
      if (!isString(value.token, 4096)) return 'hello.token must be a string';
      if (!isString(value.clientId, 128)) return 'hello.clientId must be a string';
      return value as unknown as HelloMessage;
    case 'welcome':
      if (!isUint(value.version) || !isString(value.sessionId, 128)) return 'malformed welcome';
      return value as unknown as WelcomeMessage;
    case 'listen':
      if (!isUint(value.id) || !isString(value.bindHost, 255) || !isPort(value.port)) return 'malformed listen request';
      return value as unknown as ListenMessage;
    case 'listening':
      if (!isUint(value.id) || !isString(value.bindHost, 255) || !isPort(value.port)) return 'malformed listening reply';
      return value as unknown as ListeningMessage;
    case 'error':
      if ((value.id !== undefined && !isUint(value.id)) || !isString(value.code, 64) || !isString(value.message, 4096)) return 'malformed error message';
      return value as unknown as ErrorMessage;
    case 'forward-failed':
      if (!isUint(value.streamId) || !isString(value.code, 64) || !isString(value.message, 4096)) return 'malformed forward-failed message';
      return value as unknown as ForwardFailedMessage;
    default:
      // Never String() what the peer sent: an object whose toString is not a function throws.
      return typeof value.type === 'string' ? `unknown control message type ${JSON.stringify(value.type).slice(0, 40)}` : 'a control message\'s type must be a string';
  }
}
