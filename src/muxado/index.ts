/**
 * muxtun/muxado: the muxado v1 stream multiplexer, wire-compatible with the
 * Go reference (github.com/inconshreveable/muxado).
 */
export { client, server, Session } from './session.js';
export type { OpenOptions, GoAwayInfo, SessionEnd, SessionEvents, StreamsClosedOptions } from './session.js';
export { Stream } from './stream.js';
export type { SessionOptions } from './config.js';
export { defaultSessionConfig, sessionOptionRanges } from './config.js';
export { ErrorCode, errorCodeName } from './constants.js';
export {
  MuxadoError,
  ProtocolError,
  StreamResetError,
  SessionClosedError,
  GoAwayError,
  HeartbeatTimeoutError,
  HeartbeatRefusedError,
  LimitError,
  InvalidArgumentError,
  TransportError,
  InternalError,
} from './errors.js';
