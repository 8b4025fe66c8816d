/**
 * Largest WebSocket message either side accepts. Each message is one write
 * of the TLS layer (a few records, each at most 16 KiB plus overhead); the
 * bound keeps a peer from making `ws` buffer a huge message (its own default
 * is 100 MiB).
 */
export const WS_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
