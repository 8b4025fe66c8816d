import type { ForwardSpec } from '../tunnel/index.js';
import { UsageError } from './usage-error.js';

/** Splits on ':' outside [brackets], so IPv6 addresses can be written as [::1]. */
function splitParts(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let depth = 0;
  for (const char of text) {
    if (char === '[') depth++;
    else if (char === ']') depth--;
    if (char === ':' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Parses a port, naming the option and the part when it is wrong. */
export function parsePort(text: string, context: string, allowZero = false): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${context}: "${text}" is not a port number`);
  const port = Number(text);
  if (port > 65535 || port < (allowZero ? 0 : 1)) throw new UsageError(`${context}: port ${port} is out of range (${allowZero ? 0 : 1}-65535)`);
  return port;
}

function parseHost(text: string, context: string): string {
  const host = unbracket(text);
  if (host.length === 0) throw new UsageError(`${context}: the host is empty`);
  if (host.length > 253 || /[\s/]/.test(host)) throw new UsageError(`${context}: "${text}" is not a host name or address`);
  return host;
}

/**
 * Parses `-L`/`-R` values: `[bind:]port:host:hostport`, ssh's syntax.
 * Without a bind address -L listens on 127.0.0.1 and -R on 0.0.0.0.
 * `-R [bind:]port` (no target) is reverse dynamic, as in OpenSSH 7.6+.
 * A -R may end in `,proxy-protocol=v1|v2|off` (its target's PROXY header).
 */
export function parseForwardSpec(flag: '-L' | '-R', text: string): ForwardSpec {
  const comma = text.indexOf(',');
  if (comma < 0) return parseForwardAddresses(flag, text);
  // -R only: `,proxy-protocol=v1|v2|off` after the addresses, this forward's PROXY header.
  const context = `${flag} ${text}`;
  const option = /^proxy-protocol=(.*)$/.exec(text.slice(comma + 1))?.[1];
  if (flag !== '-R' || option === undefined) throw new UsageError(`${context}: expected [bind:]port:host:hostport${flag === '-R' ? '[,proxy-protocol=v1|v2|off]' : ''}; "${text.slice(comma)}" is not understood`);
  if (option !== 'v1' && option !== 'v2' && option !== 'off') throw new UsageError(`${context}: proxy-protocol is v1, v2 or off, not "${option}"`);
  const spec = parseForwardAddresses(flag, text.slice(0, comma));
  if (spec.dynamic === true) throw new UsageError(`${context}: a reverse dynamic -R (SOCKS) takes no proxy-protocol: its targets are whatever clients ask for`);
  return { ...spec, proxyProtocol: option };
}

function parseForwardAddresses(flag: '-L' | '-R', text: string): ForwardSpec {
  const context = `${flag} ${text}`;
  const parts = splitParts(text);
  if (flag === '-R' && (parts.length === 1 || parts.length === 2)) {
    const [bind, port] = parts.length === 2 ? parts : ['0.0.0.0', parts[0]!];
    // "9000:3000" is a -R with its target host forgotten, not a bind address "9000".
    if (/^\d+$/.test(bind!)) throw new UsageError(`${context}: expected [bind:]port:host:hostport, or [bind:]port for reverse dynamic (SOCKS); "${bind}" is not a bind address`);
    return { bindHost: parseHost(bind!, `${context}: bind address`), bindPort: parsePort(port!, `${context}: listening port`, true), targetHost: '', targetPort: 0, dynamic: true };
  }
  if (parts.length !== 3 && parts.length !== 4) {
    throw new UsageError(`${context}: expected [bind:]port:host:hostport (for example 8080:localhost:80), got ${parts.length} part${parts.length === 1 ? '' : 's'}`);
  }
  const [bind, port, host, hostPort] = parts.length === 4 ? parts : [flag === '-L' ? '127.0.0.1' : '0.0.0.0', ...parts];
  return {
    bindHost: parseHost(bind!, `${context}: bind address`),
    // Port 0: any free port (logged by connect for -L, reported by the server for -R).
    bindPort: parsePort(port!, `${context}: listening port`, true),
    targetHost: parseHost(host!, `${context}: target host`),
    targetPort: parsePort(hostPort!, `${context}: target port`),
  };
}

/** Parses a `-D` value: `[bind:]port`, ssh's syntax; without a bind address it listens on 127.0.0.1. */
export function parseDynamicSpec(text: string): { bindHost: string; bindPort: number } {
  const context = `-D ${text}`;
  const parts = splitParts(text);
  if (parts.length > 2) throw new UsageError(`${context}: expected [bind:]port (for example 1080 or 0.0.0.0:1080)`);
  const [bind, port] = parts.length === 2 ? parts : ['127.0.0.1', parts[0]!];
  return { bindHost: parseHost(bind!, `${context}: bind address`), bindPort: parsePort(port!, `${context}: listening port`, true) };
}

/** Parses `host:port` (or `[v6]:port`) for the server address. */
export function parseServerAddress(text: string, context: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon === text.length - 1) throw new UsageError(`${context}: expected HOST:PORT (for example tunnel.example.com:4443), got "${text}"`);
  return { host: parseHost(text.slice(0, colon), context), port: parsePort(text.slice(colon + 1), context) };
}
