/**
 * The base of every error muxtun's own layers (util, tls, state, tunnel, cli)
 * raise. `code` is stable (like Node's `ERR_*`): match on it, never on the
 * message. The engine (`muxtun/muxado`) has its own base, `MuxadoError`,
 * because it is a library that imports nothing from the layers above it.
 * Every code is listed in the README's error table (a test checks it).
 */
export class MuxtunError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option, argument or configuration value is invalid; the message names it and its allowed range. */
export class InvalidArgumentError extends MuxtunError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MUXTUN_INVALID_ARGUMENT', message, options);
  }
}
