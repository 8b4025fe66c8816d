import { MuxtunError } from '../errors.js';

/**
 * Codes of the control socket. Stable: scripts match on them, never on
 * message text. The `…_BAD_REQUEST` to `…_INTERNAL` codes travel on the
 * wire in error responses (docs/control.md); the others are raised locally
 * by the socket's server or by the client.
 */
export const ControlErrorCode = {
  /** The control socket cannot be reached, did not answer in time, or answered something that is not the protocol. */
  UNREACHABLE: 'ERR_MUXTUN_CONTROL',
  /** No running muxtun was found in the control directory, or several were and none was chosen with --control. */
  DISCOVERY: 'ERR_MUXTUN_CONTROL_DISCOVERY',
  /** Another live muxtun (or anything else) already listens on the control socket path. */
  IN_USE: 'ERR_MUXTUN_CONTROL_IN_USE',
  /** The control socket cannot be created: directory, path too long, bind. */
  SOCKET: 'ERR_MUXTUN_CONTROL_SOCKET',
  /** Wire: the request is not valid (not JSON, not an object, wrong parameter types, line too long). Nothing was changed. */
  BAD_REQUEST: 'ERR_MUXTUN_CONTROL_BAD_REQUEST',
  /** Wire: the method is not part of the protocol. */
  UNKNOWN_METHOD: 'ERR_MUXTUN_CONTROL_UNKNOWN_METHOD',
  /** Wire: the method exists but this muxtun does not do it (forward.* on serve, session.* on connect). */
  UNSUPPORTED: 'ERR_MUXTUN_CONTROL_UNSUPPORTED',
  /** Wire: the forward or session named in the request does not exist. */
  NOT_FOUND: 'ERR_MUXTUN_CONTROL_NOT_FOUND',
  /** Wire: too many control connections at once; try again. */
  BUSY: 'ERR_MUXTUN_CONTROL_BUSY',
  /** Wire: the request failed inside muxtun for an unexpected reason (its log has the details). */
  INTERNAL: 'ERR_MUXTUN_CONTROL_INTERNAL',
} as const;

/** One of the {@link ControlErrorCode} values. */
export type ControlErrorCode = (typeof ControlErrorCode)[keyof typeof ControlErrorCode];

/** An error of the control socket raised on this side; `code` is one of {@link ControlErrorCode}. */
export class ControlError extends MuxtunError {
  declare readonly code: ControlErrorCode;

  constructor(code: ControlErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The running muxtun answered a request with an error. `code` is the code it
 * sent: one of the wire codes of {@link ControlErrorCode}, or the code of the
 * tunnel error behind the refusal (a refused `forward add -R` carries the
 * same `ERR_MUXTUN_POLICY` or `ERR_MUXTUN_BIND` that `connect -R` would).
 */
export class ControlRequestError extends MuxtunError {
  /** The method of the refused request. */
  readonly method: string;

  constructor(method: string, code: string, message: string) {
    super(code, message);
    this.method = method;
  }
}

/**
 * For handlers: the forward or session a request names does not exist.
 * Thrown from a handler, it reaches the client as `ERR_MUXTUN_CONTROL_NOT_FOUND`.
 */
export class ControlNotFoundError extends ControlError {
  constructor(message: string) {
    super(ControlErrorCode.NOT_FOUND, message);
  }
}
