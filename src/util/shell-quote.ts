/**
 * Quotes a path for the fix-it commands in error messages, so the advice can
 * be pasted into a POSIX shell even when the path has spaces or quotes.
 */
export function shellQuote(path: string): string {
  if (/^[\w@%+=:,./-]+$/.test(path)) return path;
  return `'${path.replaceAll("'", `'\\''`)}'`;
}
