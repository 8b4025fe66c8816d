import { ErrorCode, errorCodeName } from './constants.js';

/**
 * Base of every error the engine raises. `code` is stable (`ERR_MUXADO_*`);
 * `errorCode` is the wire error code (RST/GOAWAY) the error corresponds to.
 */
export class MuxadoError extends Error {
  readonly code: string;
  readonly errorCode: number;

  constructor(code: string, message: string, errorCode: number = ErrorCode.INTERNAL_ERROR, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.errorCode = errorCode;
  }
}

/** The peer sent bytes that are not valid muxado; the session ends with GOAWAY(PROTOCOL_ERROR). */
export class ProtocolError extends MuxadoError {
  constructor(message: string) {
    super('ERR_MUXADO_PROTOCOL', message, ErrorCode.PROTOCOL_ERROR);
  }
}

/** A stream ended by RST. `remote` tells who sent it. */
export class StreamResetError extends MuxadoError {
  readonly remote: boolean;

  constructor(errorCode: number, remote: boolean, detail?: string) {
    const who = remote ? 'the peer' : 'this side';
    super(
      'ERR_MUXADO_STREAM_RESET',
      `stream reset by ${who} with ${errorCodeName(errorCode)}${detail ? `: ${detail}` : ''}`,
      errorCode,
    );
    this.remote = remote;
  }
}

/** The session ended (closed by either side, or failed) while the stream or call was pending. */
export class SessionClosedError extends MuxadoError {
  constructor(message = 'the session is closed', errorCode: number = ErrorCode.NO_ERROR, options?: { cause?: unknown }) {
    super('ERR_MUXADO_SESSION_CLOSED', message, errorCode, options);
  }
}

/** The peer sent GOAWAY: it takes no new streams (and refused this one, if it names a stream). */
export class GoAwayError extends MuxadoError {
  constructor(message: string, errorCode: number = ErrorCode.REFUSED_STREAM) {
    super('ERR_MUXADO_GOAWAY', message, errorCode);
  }
}

/** The peer did not echo heartbeats within interval + tolerance. */
export class HeartbeatTimeoutError extends MuxadoError {
  constructor(silentMs: number) {
    super('ERR_MUXADO_HEARTBEAT_TIMEOUT', `the peer answered no heartbeat for ${silentMs} ms`, ErrorCode.INTERNAL_ERROR);
  }
}

/** The peer reset our heartbeat stream, so it cannot be probed for liveness. */
export class HeartbeatRefusedError extends MuxadoError {
  constructor(errorCode: number) {
    super(
      'ERR_MUXADO_HEARTBEAT_REFUSED',
      `the peer reset the heartbeat stream (${errorCodeName(errorCode)}), so its liveness cannot be checked; use heartbeat: false for peers without the heartbeat extension`,
      ErrorCode.PROTOCOL_ERROR,
    );
  }
}

/**
 * A configured limit was reached; the message names it. `errorCode` is
 * REFUSED_STREAM for a stream refused or not opened; a limit that ends the
 * whole session says what its GOAWAY carries.
 */
export class LimitError extends MuxadoError {
  constructor(message: string, errorCode: number = ErrorCode.REFUSED_STREAM) {
    super('ERR_MUXADO_LIMIT', message, errorCode);
  }
}

/** An option or argument given by the application is invalid; the message names it. */
export class InvalidArgumentError extends MuxadoError {
  constructor(message: string) {
    super('ERR_MUXADO_INVALID_ARGUMENT', message, ErrorCode.INTERNAL_ERROR);
  }
}

/** The transport (socket) failed or ended without a GOAWAY. */
export class TransportError extends MuxadoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MUXADO_TRANSPORT', message, ErrorCode.INTERNAL_ERROR, options);
  }
}

/**
 * A bug, not the peer's fault: handling a well-formed frame threw (in the
 * engine or in an application listener it called). The session ends with
 * GOAWAY(INTERNAL_ERROR); `cause` is what was thrown.
 */
export class InternalError extends MuxadoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MUXADO_INTERNAL', message, ErrorCode.INTERNAL_ERROR, options);
  }
}
