/**
 * The base of every error muxtun's own layers (tls, tunnel, cli) raise.
 * `code` is stable (like Node's `ERR_*`): match on it, never on the message.
 * The engine (`muxtun/muxado`) has its own base, `MuxadoError`, because it is
 * a library that imports nothing from the layers above it.
 */
export class MuxtunError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
