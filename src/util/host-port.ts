import { isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../errors.js';

/**
 * The `host:port` key muxtun uses for a server in known_hosts and in
 * messages: the host lowercased (DNS names are case-insensitive) and IPv6
 * literals in brackets, `[::1]:7000`, so the port stays unambiguous.
 *
 * @throws {@link InvalidArgumentError} (`ERR_MUXTUN_INVALID_ARGUMENT`) for an
 *   empty host, whitespace in it, or a port outside 1-65535
 */
export function formatHostPort(host: string, port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`Invalid port ${port}: expected an integer from 1 to 65535`);
  }
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === '' || /[\s#[\]]/.test(bare)) {
    throw new InvalidArgumentError(`Invalid host ${JSON.stringify(host)}`);
  }
  const lower = bare.toLowerCase();
  return isIPv6(lower) ? `[${lower}]:${port}` : `${lower}:${port}`;
}

/**
 * Checks and normalises a `host:port` key given as text (as read from
 * known_hosts or passed by a caller).
 *
 * @returns the key in {@link formatHostPort} form, or `undefined` if malformed
 */
export function normalizeHostPort(text: string): string | undefined {
  const match = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (match === null) return undefined;
  try {
    return formatHostPort(match[1] ?? '', Number(match[2]));
  } catch {
    return undefined;
  }
}
