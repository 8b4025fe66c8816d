/**
 * Largest WebSocket message either side accepts. Our own messages are at
 * most 16 KiB (WS_MESSAGE_BYTES in websocket-stream.ts); the bound keeps a peer from making `ws` buffer a huge message (its own default
 * is 100 MiB).
 */
export const WS_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
