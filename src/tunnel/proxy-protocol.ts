/**
 * PROXY protocol headers (haproxy's proxy-protocol.txt), written by the side
 * that dials a forward's target before any forwarded byte, so the service
 * behind a tunnel sees who really connected. Only TCP over IPv4 and IPv6 is
 * described; anything else (a peer address that is unknown or not IP) is
 * sent as v1 `UNKNOWN` / v2 `LOCAL`, which consumers take as "use the
 * connection's own addresses".
 */
import net from 'node:net';

export type ProxyProtocolVersion = 'v1' | 'v2';

export const PROXY_PROTOCOL_VERSIONS: readonly ProxyProtocolVersion[] = ['v1', 'v2'];

/** One end of a TCP connection. */
export interface AddressPort {
  address: string;
  port: number;
}

/** The v2 signature: \r\n\r\n\0\r\nQUIT\n. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Longest `address:port` text accepted in a stream header: an IPv6 address with a zone id, a colon, a port. */
export const MAX_ADDRESS_PORT_LENGTH = 100;

/**
 * `source` connected to `destination`; the header says so in `version`.
 * Without both (or with a family that is not IP) the header says nothing
 * about addresses (v1 UNKNOWN, v2 LOCAL).
 */
export function encodeProxyHeader(version: ProxyProtocolVersion, source: AddressPort | undefined, destination: AddressPort | undefined): Buffer {
  const pair = source && destination ? sameFamily(source, destination) : null;
  if (version === 'v1') {
    if (pair === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const [src, dst] = pair;
    return Buffer.from(`PROXY TCP${src.family} ${src.address} ${dst.address} ${src.port} ${dst.port}\r\n`, 'latin1');
  }
  if (pair === null) return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const [src, dst] = pair;
  const size = src.family === 4 ? 4 : 16;
  const body = Buffer.alloc(2 * size + 4);
  ipBytes(src).copy(body, 0);
  ipBytes(dst).copy(body, size);
  body.writeUInt16BE(src.port, 2 * size);
  body.writeUInt16BE(dst.port, 2 * size + 2);
  const head = Buffer.from([0x21, src.family === 4 ? 0x11 : 0x21, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, head, body]);
}

/** `address:port` as Node prints a socket's ends (IPv6 without brackets, split at the last colon); null when it is not an IP address and a port. */
export function parseAddressPort(text: string): AddressPort | null {
  if (text.length > MAX_ADDRESS_PORT_LENGTH) return null;
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const address = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const portText = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535 || net.isIP(address) === 0) return null;
  return { address, port: Number(portText) };
}

/** A socket's remote (`'remote'`) or local end as `address:port`, or undefined when the socket no longer knows it. */
export function socketEnd(socket: net.Socket, end: 'remote' | 'local'): string | undefined {
  const address = end === 'remote' ? socket.remoteAddress : socket.localAddress;
  const port = end === 'remote' ? socket.remotePort : socket.localPort;
  return address === undefined || port === undefined ? undefined : `${address}:${port}`;
}

interface Ip extends AddressPort {
  family: 4 | 6;
}

/**
 * Both ends in one family, as the header has one: IPv4-mapped IPv6 (a
 * dual-stack listener's IPv4 peers) become IPv4; a pair still mixed is
 * sent as IPv6 with the IPv4 one mapped. Zone ids cannot be sent: dropped.
 */
function sameFamily(source: AddressPort, destination: AddressPort): [Ip, Ip] | null {
  const src = normalize(source);
  const dst = normalize(destination);
  if (src === null || dst === null) return null;
  if (src.family === dst.family) return [src, dst];
  const mapped = (ip: Ip): Ip => (ip.family === 4 ? { address: `::ffff:${ip.address}`, port: ip.port, family: 6 } : ip);
  return [mapped(src), mapped(dst)];
}

function normalize({ address, port }: AddressPort): Ip | null {
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  const bare = address.replace(/%.*$/, '');
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  if (v4 !== undefined && net.isIPv4(v4)) return { address: v4, port, family: 4 };
  const family = net.isIP(bare);
  return family === 0 ? null : { address: bare, port, family: family as 4 | 6 };
}

function ipBytes(ip: Ip): Buffer {
  if (ip.family === 4) return Buffer.from(ip.address.split('.').map(Number));
  const out = Buffer.alloc(16);
  let text = ip.address;
  // An IPv4 tail (::ffff:1.2.3.4) is the last two groups.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (tail !== undefined) {
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const front = groups(head);
  const back = rest === undefined ? [] : groups(rest);
  const all = rest === undefined ? front : [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  all.forEach((group, index) => out.writeUInt16BE(group, index * 2));
  return out;
}

/** The header for ends written as stream headers carry them (`address:port`); either missing or unparsable: UNKNOWN / LOCAL. */
export function proxyHeaderFor(version: ProxyProtocolVersion, source: string | undefined, destination: string | undefined): Buffer {
  const parse = (text: string | undefined): AddressPort | undefined => (text === undefined ? undefined : (parseAddressPort(text) ?? undefined));
  return encodeProxyHeader(version, parse(source), parse(destination));
}
