/**
 * The transport layer: how the bytes of the server's TLS travel. Directly
 * over TCP, through an HTTP CONNECT or SOCKS5 proxy, or inside a WebSocket
 * (behind a reverse proxy); and, on the server, the WebSocket listener.
 * Nothing here logs or trusts the server: the TLS layer above decides that.
 */
export { TransportError, TransportErrorCode } from './errors.js';
export { describeProxy, parseProxyUrl, proxyFromEnv, redactUrl, type ProxyConfig } from './proxy-url.js';
export { parseWebSocketUrl, resolveTransport, WEBSOCKET_MODES, type ResolvedTransport, type ServerEndpoint, type TransportOptions, type WebSocketMode } from './endpoint.js';
export { dialTransport } from './dial.js';
export { WebSocketListener, DEFAULT_WS_PATH, type WebSocketListenerOptions, type WebSocketConnection } from './websocket-listener.js';
