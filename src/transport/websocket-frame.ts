import { createHash } from 'node:crypto';

/**
 * The few bits of RFC 6455 muxtun writes itself, beside what `ws` does for
 * it: frame headers (messages mode writes its binary frames straight to the
 * socket; stream mode sends one endless frame) and the handshake's accept value.
 */

/** FIN + binary: every message is one frame. */
const FIN_BINARY = 0x82;
const MASK_BIT = 0x80;
/** Payload length 127: a 64-bit length follows. */
const LENGTH_64 = 127;
/** RFC 6455 5.2: the most significant bit of the 64-bit length must be 0. */
const MAX_LENGTH = 0x7fff_ffff_ffff_ffffn;
/** RFC 6455 1.3: appended to Sec-WebSocket-Key before hashing. */
const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** RFC 6455 5.2 header of a final binary frame of `length` (< 65536) bytes; masked with the zero key for a client. */
export function frameHeader(length: number, masked: boolean): Buffer {
  const short = length < 126;
  const header = Buffer.allocUnsafe((short ? 2 : 4) + (masked ? 4 : 0));
  header[0] = FIN_BINARY;
  header[1] = (short ? length : 126) | (masked ? MASK_BIT : 0);
  if (!short) header.writeUInt16BE(length, 2);
  if (masked) header.fill(0, header.length - 4);
  return header;
}

/**
 * Stream mode's one frame header: final, binary, the largest length RFC
 * 6455 allows, so everything after it on the connection is its payload.
 * The client's is masked with the all-zero key (14 bytes), which leaves
 * the payload as it is; the server's is unmasked (10 bytes).
 */
export function streamFrameHeader(masked: boolean): Buffer {
  const header = Buffer.alloc(masked ? 14 : 10);
  header[0] = FIN_BINARY;
  header[1] = LENGTH_64 | (masked ? MASK_BIT : 0);
  header.writeBigUInt64BE(MAX_LENGTH, 2);
  return header;
}

/** Bytes of the client's (masked) and the server's stream-mode header. */
export const STREAM_HEADER_BYTES = { client: 14, server: 10 } as const;

/** True when `bytes` is exactly the stream-mode header {@link streamFrameHeader} makes (any other mask key would change the payload). */
export function isStreamFrameHeader(bytes: Buffer, masked: boolean): boolean {
  return bytes.equals(streamFrameHeader(masked));
}

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2). */
export function webSocketAccept(key: string): string {
  return createHash('sha1').update(key + HANDSHAKE_GUID).digest('base64');
}

/** A valid Sec-WebSocket-Key: 16 bytes in base64 (RFC 6455 4.1). */
export function isWebSocketKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key);
}
