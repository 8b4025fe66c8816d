import { open } from 'node:fs/promises';

/**
 * Reads a UTF-8 file of at most `maxBytes`. Returns `tooLarge: true` instead
 * of the text when the file is bigger, so each caller raises its own error
 * code naming the limit. File system errors (ENOENT, EACCES) are thrown as-is
 * for the caller to translate.
 *
 * Reads through one file handle, bounded by the limit even if the file grows
 * between `fstat` and `read`, so a huge or endless file (a FIFO, /dev/zero)
 * never gets buffered whole.
 */
export async function readFileBounded(
  path: string,
  maxBytes: number,
): Promise<{ tooLarge: false; text: string } | { tooLarge: true }> {
  const handle = await open(path, 'r');
  try {
    const stat = await handle.stat();
    if (stat.isFile() && stat.size > maxBytes) return { tooLarge: true };
    const buffer = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > maxBytes) return { tooLarge: true };
    return { tooLarge: false, text: buffer.subarray(0, filled).toString('utf8') };
  } finally {
    await handle.close();
  }
}
