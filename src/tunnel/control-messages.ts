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
  /** After a resume, carries an existing conn again; opened by the side that opened the conn. */
  RESUME: 4,
  /** Client-opened per -D (SOCKS) or -W connection; the header names the target, the server answers with a dial reply first. */
  DYNAMIC: 5,
} as const;

export interface HelloMessage {
  type: 'hello';
  version: number;
  token: string;
  /** Random per `connect` process, kept across reconnects: lets the server replace a stale session. */
  clientId: string;
  /** The client can resume sessions (it sends acks and keeps its connections across transports). */
  resume?: boolean;
  /** Resume this session instead of starting one: the id and secret from its welcome. */
  resumeSession?: { sessionId: string; secret: string };
}

export interface WelcomeMessage {
  type: 'welcome';
  version: number;
  sessionId: string;
  /** Present when the server keeps this session for a resume: the proof a resume must show, and how long it waits. */
  resume?: { secret: string; graceMs: number };
}

/** The server took the resume: the session goes on over this transport. */
export interface ResumedMessage {
  type: 'resumed';
  sessionId: string;
}

/** One conn's state as acks and resume messages carry it: id, bytes received of the peer's sequence, its FIN received. */
export type ConnState = [id: number, bytes: number, fin: boolean];

/** What one side has received of each conn, at resume (several messages; the last says so). */
export interface ResumeStateMessage {
  type: 'resume-state';
  /** The highest conn id of the receiver's parity the sender has ever seen. */
  highestSeen: number;
  conns: ConnState[];
  last: boolean;
}

/** Bytes received on conns since the last ack: the sender may forget them. */
export interface AckMessage {
  type: 'ack';
  acks: ConnState[];
}

export interface ListenMessage {
  type: 'listen';
  /** Chosen by the client; names the forward in replies and stream headers. */
  id: number;
  bindHost: string;
  port: number;
  /** Reverse dynamic: the listener speaks SOCKS, and each stream's header names the target the client asked for. */
  dynamic?: boolean;
}

/** Withdraws a -R forward: the server closes its listener; connections it accepted go on until they end. */
export interface UnlistenMessage {
  type: 'unlisten';
  /** The id of an earlier `listen`; one the server does not hold (refused, or already gone) is ignored. */
  id: number;
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

/**
 * The server closed a -R listener it had opened for the client (a reload
 * no longer allows its port): the forward is gone for this session and the
 * client should not ask for it again. Connections already open may finish.
 */
export interface ForwardClosedMessage {
  type: 'forward-closed';
  /** The listen request's id. */
  id: number;
  code: string;
  message: string;
}

export type ClientMessage = HelloMessage | ListenMessage | UnlistenMessage | ResumeStateMessage | AckMessage;
export type ServerMessage = WelcomeMessage | ListeningMessage | ErrorMessage | ForwardFailedMessage | ForwardClosedMessage | ResumedMessage | ResumeStateMessage | AckMessage;
export type ControlMessage = ClientMessage | ServerMessage;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown, max = 1024): value is string => typeof value === 'string' && value.length <= max;
const isUint = (value: unknown, max = 0xffffffff): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
const isPort = (value: unknown): value is number => isUint(value, 65535);

const CLIENT_TYPES: ReadonlySet<string> = new Set<ClientMessage['type']>(['hello', 'listen', 'unlisten', 'resume-state', 'ack']);
const SERVER_TYPES: ReadonlySet<string> = new Set<ServerMessage['type']>(['welcome', 'listening', 'error', 'forward-failed', 'forward-closed', 'resumed', 'resume-state', 'ack']);
/** Most conn states in one message (a resume or an ack is split across several). */
const MAX_CONN_STATES = 1000;

const isConnStates = (value: unknown): value is ConnState[] =>
  Array.isArray(value) &&
  value.length <= MAX_CONN_STATES &&
  value.every((entry) => Array.isArray(entry) && entry.length === 3 && isUint(entry[0], 0x7fffffff) && isUint(entry[1], Number.MAX_SAFE_INTEGER) && typeof entry[2] === 'boolean');

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
      if (value.resume !== undefined && typeof value.resume !== 'boolean') return 'hello.resume must be true or false';
      if (value.resumeSession !== undefined) {
        const session = value.resumeSession;
        if (!isRecord(session) || !isString(session.sessionId, 128) || !isString(session.secret, 128)) return 'hello.resumeSession must have a sessionId and a secret';
      }
      return value as unknown as HelloMessage;
    case 'welcome':
      if (!isUint(value.version) || !isString(value.sessionId, 128)) return 'malformed welcome';
      if (value.resume !== undefined && (!isRecord(value.resume) || !isString(value.resume.secret, 128) || !isUint(value.resume.graceMs))) return 'malformed welcome.resume';
      return value as unknown as WelcomeMessage;
    case 'resumed':
      if (!isString(value.sessionId, 128)) return 'malformed resumed message';
      return value as unknown as ResumedMessage;
    case 'resume-state':
      if (!isUint(value.highestSeen, 0x7fffffff) || !isConnStates(value.conns) || typeof value.last !== 'boolean') return 'malformed resume-state message';
      return value as unknown as ResumeStateMessage;
    case 'ack':
      if (!isConnStates(value.acks)) return 'malformed ack message';
      return value as unknown as AckMessage;
    case 'listen':
      if (!isUint(value.id) || !isString(value.bindHost, 255) || !isPort(value.port) || (value.dynamic !== undefined && typeof value.dynamic !== 'boolean')) return 'malformed listen request';
      return value as unknown as ListenMessage;
    case 'unlisten':
      if (!isUint(value.id)) return 'malformed unlisten request';
      return value as unknown as UnlistenMessage;
    case 'listening':
      if (!isUint(value.id) || !isString(value.bindHost, 255) || !isPort(value.port)) return 'malformed listening reply';
      return value as unknown as ListeningMessage;
    case 'error':
      if ((value.id !== undefined && !isUint(value.id)) || !isString(value.code, 64) || !isString(value.message, 4096)) return 'malformed error message';
      return value as unknown as ErrorMessage;
    case 'forward-failed':
      if (!isUint(value.streamId) || !isString(value.code, 64) || !isString(value.message, 4096)) return 'malformed forward-failed message';
      return value as unknown as ForwardFailedMessage;
    case 'forward-closed':
      if (!isUint(value.id) || !isString(value.code, 64) || !isString(value.message, 4096)) return 'malformed forward-closed message';
      return value as unknown as ForwardClosedMessage;
    default:
      // Never String() what the peer sent: an object whose toString is not a function throws.
      return typeof value.type === 'string' ? `unknown control message type ${JSON.stringify(value.type).slice(0, 40)}` : 'a control message\'s type must be a string';
  }
}
