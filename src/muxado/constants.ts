/** Wire constants of muxado v1: see docs/muxado.md for what each means on the wire. */

export const FrameType = {
  SYN: 0x1,
  RST: 0x2,
  DATA: 0x3,
  WNDINC: 0x4,
  GOAWAY: 0x6,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const Flag = {
  FIN: 0x01,
  /** SYN only: a u32 priority follows. */
  PRIORITY: 0x02,
  /** SYN only: a u32 stream type follows. */
  TYPE: 0x04,
} as const;

/**
 * Error codes carried by RST and GOAWAY frames.
 * The reference peer refuses to send a code of 8 or more; a received code can
 * still be any u32, so fields that hold a peer's code are typed `number`.
 */
export const ErrorCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 4,
  FRAME_SIZE_ERROR: 5,
  REFUSED_STREAM: 6,
  CANCEL: 7,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const errorCodeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** `CANCEL` for 7, `UNKNOWN(42)` for a code outside the table. */
export function errorCodeName(code: number): string {
  return errorCodeNames.get(code) ?? `UNKNOWN(${code})`;
}

export const HEADER_SIZE = 8;
/** The length field has 14 bits. */
export const MAX_FRAME_PAYLOAD = 0x3fff;
/** Both peers assume this window at open; the protocol has no settings frame. */
export const INITIAL_WINDOW = 0x10000;
export const MAX_WINDOW = 0x7fffffff;
export const MAX_STREAM_ID = 0x7fffffff;

/** Stream types at or above this value belong to extensions. */
export const EXTENSION_TYPE_MIN = 0xfffffeff;
export const HEARTBEAT_STREAM_TYPE = 0xfffffeff;
export const HEARTBEAT_PRIORITY = 0x7fffffff;
export const MAX_U32 = 0xffffffff;
