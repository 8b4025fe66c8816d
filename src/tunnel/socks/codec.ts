/**
 * SOCKS4/4a and SOCKS5 (RFC 1928, no authentication) as a pure codec: the
 * server-side parsers are fed the bytes received so far and say "need
 * more", "bad" (with the reply to send, if any) or "done" (with how many
 * bytes the message took). Encoders for the client side serve the tests and
 * anyone who needs to speak SOCKS to a muxtun listener. Both -D (a listener
 * on the client) and reverse dynamic -R (a listener on the server) use it.
 */
import net from 'node:net';

/** SOCKS5 reply codes (RFC 1928, section 6). */
export const Socks5Reply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type Socks5Reply = (typeof Socks5Reply)[keyof typeof Socks5Reply];

/** SOCKS commands; only CONNECT is served. */
export const SocksCommand = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const;

/** The longest SOCKS4 user id or domain name accepted (SOCKS5's length byte caps its names at 255 anyway). */
export const MAX_SOCKS4_FIELD = 255;

export type Parsed<T> =
  | { state: 'more' }
  | { state: 'bad'; reason: string; /** What to answer before closing, when the request got that far. */ reply?: Buffer }
  | { state: 'done'; value: T; length: number };

export interface SocksRequest {
  version: 4 | 5;
  command: number;
  host: string;
  port: number;
}

const MORE = { state: 'more' } as const;

/** SOCKS5 method selection: VER=5, NMETHODS, METHODS. */
export function parseSocks5Greeting(buf: Buffer): Parsed<{ methods: number[] }> {
  if (buf.length < 2) return MORE;
  if (buf[0] !== 5) return { state: 'bad', reason: `not SOCKS5 (version byte ${buf[0]})` };
  const count = buf[1]!;
  if (count === 0) return { state: 'bad', reason: 'SOCKS5 greeting offers no method', reply: Buffer.from([5, 0xff]) };
  if (buf.length < 2 + count) return MORE;
  return { state: 'done', value: { methods: [...buf.subarray(2, 2 + count)] }, length: 2 + count };
}

/** SOCKS5 request: VER=5, CMD, RSV, ATYP, DST.ADDR, DST.PORT. */
export function parseSocks5Request(buf: Buffer): Parsed<SocksRequest> {
  if (buf.length < 5) return MORE;
  if (buf[0] !== 5) return { state: 'bad', reason: `SOCKS5 request with version byte ${buf[0]}`, reply: socks5Reply(Socks5Reply.GENERAL_FAILURE) };
  const command = buf[1]!;
  const type = buf[3]!;
  let host: string;
  let at: number;
  switch (type) {
    case 1:
      if (buf.length < 10) return MORE;
      host = [...buf.subarray(4, 8)].join('.');
      at = 8;
      break;
    case 3: {
      const length = buf[4]!;
      if (length === 0) return { state: 'bad', reason: 'SOCKS5 request with an empty domain name', reply: socks5Reply(Socks5Reply.GENERAL_FAILURE) };
      if (buf.length < 5 + length + 2) return MORE;
      host = buf.subarray(5, 5 + length).toString('latin1');
      at = 5 + length;
      if (!isDomainName(host)) return { state: 'bad', reason: 'SOCKS5 request with a malformed domain name', reply: socks5Reply(Socks5Reply.GENERAL_FAILURE) };
      break;
    }
    case 4:
      if (buf.length < 22) return MORE;
      host = formatIPv6(buf.subarray(4, 20));
      at = 20;
      break;
    default:
      return { state: 'bad', reason: `SOCKS5 address type ${type} is not supported`, reply: socks5Reply(Socks5Reply.ADDRESS_TYPE_NOT_SUPPORTED) };
  }
  const port = buf.readUInt16BE(at);
  return { state: 'done', value: { version: 5, command, host, port }, length: at + 2 };
}

/** SOCKS4 and 4a request: VN=4, CD, DSTPORT, DSTIP, USERID NUL [, DOMAIN NUL when DSTIP is 0.0.0.x, x > 0]. */
export function parseSocks4Request(buf: Buffer): Parsed<SocksRequest> {
  if (buf.length < 8) return MORE;
  if (buf[0] !== 4) return { state: 'bad', reason: `not SOCKS4 (version byte ${buf[0]})` };
  const command = buf[1]!;
  const port = buf.readUInt16BE(2);
  const userEnd = buf.indexOf(0, 8);
  if (userEnd < 0) return buf.length - 8 > MAX_SOCKS4_FIELD ? { state: 'bad', reason: `SOCKS4 user id longer than ${MAX_SOCKS4_FIELD} bytes`, reply: socks4Reply(false) } : MORE;
  if (userEnd - 8 > MAX_SOCKS4_FIELD) return { state: 'bad', reason: `SOCKS4 user id longer than ${MAX_SOCKS4_FIELD} bytes`, reply: socks4Reply(false) };
  const is4a = buf[4] === 0 && buf[5] === 0 && buf[6] === 0 && buf[7] !== 0;
  if (!is4a) return { state: 'done', value: { version: 4, command, host: [...buf.subarray(4, 8)].join('.'), port }, length: userEnd + 1 };
  const nameEnd = buf.indexOf(0, userEnd + 1);
  if (nameEnd < 0) return buf.length - userEnd - 1 > MAX_SOCKS4_FIELD ? { state: 'bad', reason: `SOCKS4a domain name longer than ${MAX_SOCKS4_FIELD} bytes`, reply: socks4Reply(false) } : MORE;
  const host = buf.subarray(userEnd + 1, nameEnd).toString('latin1');
  if (nameEnd - userEnd - 1 > MAX_SOCKS4_FIELD || !isDomainName(host)) return { state: 'bad', reason: 'SOCKS4a request with a malformed domain name', reply: socks4Reply(false) };
  return { state: 'done', value: { version: 4, command, host, port }, length: nameEnd + 1 };
}

/** A SOCKS5 reply; the bound address is not meaningful through a tunnel, so it is 0.0.0.0:0. */
export function socks5Reply(code: Socks5Reply): Buffer {
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** A SOCKS4 reply: 0x5A granted, 0x5B rejected or failed. */
export function socks4Reply(granted: boolean): Buffer {
  return Buffer.from([0, granted ? 0x5a : 0x5b, 0, 0, 0, 0, 0, 0]);
}

/** Encodes a SOCKS5 request (client side): IPv4 and IPv6 literals as such, anything else as a domain name. */
export function encodeSocks5Request(request: { command?: number; host: string; port: number }): Buffer {
  const port = Buffer.alloc(2);
  port.writeUInt16BE(request.port);
  const head = [5, request.command ?? SocksCommand.CONNECT, 0];
  if (net.isIPv4(request.host)) return Buffer.concat([Buffer.from([...head, 1, ...request.host.split('.').map(Number)]), port]);
  if (net.isIPv6(request.host)) return Buffer.concat([Buffer.from([...head, 4]), parseIPv6(request.host), port]);
  const name = Buffer.from(request.host, 'latin1');
  return Buffer.concat([Buffer.from([...head, 3, name.length]), name, port]);
}

/** Encodes a SOCKS4 (IPv4 literal) or SOCKS4a (domain name) request. */
export function encodeSocks4Request(request: { command?: number; host: string; port: number; userId?: string }): Buffer {
  const head = Buffer.alloc(8);
  head[0] = 4;
  head[1] = request.command ?? SocksCommand.CONNECT;
  head.writeUInt16BE(request.port, 2);
  const user = Buffer.from(`${request.userId ?? ''}\0`, 'latin1');
  // 0.0.0.x (x > 0) is SOCKS4a's "a name follows" marker, so such an address travels as a name.
  if (net.isIPv4(request.host) && !/^0\.0\.0\.(?!0$)\d+$/.test(request.host)) {
    request.host.split('.').forEach((part, i) => (head[4 + i] = Number(part)));
    return Buffer.concat([head, user]);
  }
  head[7] = 1;
  return Buffer.concat([head, user, Buffer.from(`${request.host}\0`, 'latin1')]);
}

/** Printable ASCII without spaces or NUL: what a host name can be; rejects control bytes a log or a resolver would choke on. */
function isDomainName(host: string): boolean {
  return host.length > 0 && host.length <= 255 && /^[\x21-\x7e]+$/.test(host);
}

function formatIPv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Let Node's URL parser give the canonical short form (:: for the longest zero run).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function parseIPv6(text: string): Buffer {
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [left, right] = canonical.includes('::') ? canonical.split('::') : [canonical, undefined];
  const leftGroups = left ? left.split(':') : [];
  const rightGroups = right ? right.split(':') : [];
  const groups = right === undefined ? leftGroups : [...leftGroups, ...Array<string>(8 - leftGroups.length - rightGroups.length).fill('0'), ...rightGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
