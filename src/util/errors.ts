/**
 * The one way muxtun turns anything thrown into words: the system error
 * code of a Node error, its message, and a one-line description for logs
 * and for the CLI's last line.
 */

/** The `code` of an error (`ENOENT`, `ECONNREFUSED`, `ERR_MUXTUN_AUTH`...), if it has a string one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error as { code: unknown };
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The message of anything thrown, for embedding in our own messages. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A short description of any thrown value: its message, and its code when the message does not already say it. */
export function describeError(error: unknown): string {
  const message = errorMessage(error);
  const code = error instanceof Error ? errnoCode(error) : undefined;
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}

/**
 * The line the CLI ends with when a command fails: the message, and the
 * stable code in brackets for errors that carry one of muxtun's own
 * (`… [ERR_MUXTUN_AUTH]`), so scripts and bug reports can quote it.
 */
export function describeFailure(error: unknown): string {
  const code = errnoCode(error);
  const message = errorMessage(error);
  return code !== undefined && /^ERR_MUX(TUN|ADO)_/.test(code) ? `${message} [${code}]` : message;
}
