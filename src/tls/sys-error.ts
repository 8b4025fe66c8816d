/** The `code` of a Node system error (`ENOENT`, `ECONNREFUSED`...), if it is one. */
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
