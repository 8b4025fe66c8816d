import { InvalidArgumentError } from '../errors.js';
import { OptionError } from '../util/validate.js';
import { parseProxyUrl, proxyFromEnv, type ProxyConfig } from './proxy-url.js';

/**
 * Where the server's TLS is reached: straight over TCP (`host:port`), or
 * inside a WebSocket (`ws://` or `wss://` URL, usually behind a reverse proxy).
 */
export type ServerEndpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'websocket'; url: URL };

/**
 * How the tunnel's TLS travels inside the WebSocket. `stream`: one endless
 * binary frame, TLS straight on the socket after the headers (as fast as
 * raw TLS; needs a proxy that passes the upgraded connection through as
 * bytes, as nginx, Caddy and HAProxy do). `messages`: binary messages of
 * 16 KiB, for proxies and CDNs that inspect or re-frame messages.
 */
export type WebSocketMode = 'stream' | 'messages';

/** Every {@link WebSocketMode}, the default first. */
export const WEBSOCKET_MODES: readonly WebSocketMode[] = ['stream', 'messages'];

/**
 * How the client reaches the server: `proxy` wins; `'direct'` turns proxies
 * off; without either, WebSocket servers take HTTPS_PROXY/HTTP_PROXY/NO_PROXY
 * from `env` (raw TLS servers ignore those, they are for HTTP clients).
 */
export interface TransportOptions {
  endpoint: ServerEndpoint;
  proxy?: ProxyConfig | 'direct';
  /** Read for the HTTP proxy variables. Default: none. */
  env?: NodeJS.ProcessEnv;
  /** How a WebSocket endpoint carries the TLS (ignored for TCP). Default `'stream'`. */
  wsMode?: WebSocketMode;
}

/** The resolved way: the endpoint and the proxy in between, if any. */
export interface ResolvedTransport {
  endpoint: ServerEndpoint;
  proxy: ProxyConfig | undefined;
  /** Host and port the inner TLS names (SNI, CA host check, known_hosts). */
  host: string;
  port: number;
  /** How a WebSocket endpoint carries the TLS. */
  wsMode: WebSocketMode;
}

/**
 * Parses a `ws://` or `wss://` server URL.
 *
 * @throws {@link InvalidArgumentError} naming what is wrong
 */
export function parseWebSocketUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`Invalid server URL "${text}": expected wss://host[:port]/path or ws://host:port/path`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new InvalidArgumentError(`Invalid server URL "${text}": the scheme must be ws:// or wss://`);
  if (url.hostname === '') throw new InvalidArgumentError(`Invalid server URL "${text}": no host`);
  if (url.username !== '' || url.password !== '') throw new InvalidArgumentError(`Invalid server URL: credentials in a ws:// URL are not used; the token authenticates`);
  if (url.hash !== '') throw new InvalidArgumentError(`Invalid server URL "${text}": a WebSocket URL has no #fragment`);
  return url;
}

/**
 * Validates the transport once and picks the proxy (see {@link TransportOptions}).
 *
 * @throws {@link OptionError} for `wsMode`
 */
export function resolveTransport(options: TransportOptions): ResolvedTransport {
  const { endpoint } = options;
  const wsMode = options.wsMode ?? WEBSOCKET_MODES[0]!;
  if (!WEBSOCKET_MODES.includes(wsMode)) throw new OptionError('wsMode', `one of ${WEBSOCKET_MODES.join(', ')}`, wsMode);
  let proxy: ProxyConfig | undefined;
  if (options.proxy === 'direct') proxy = undefined;
  else if (options.proxy !== undefined) proxy = options.proxy;
  else if (endpoint.kind === 'websocket' && options.env) {
    const fromEnv = proxyFromEnv(endpoint.url, options.env);
    if (fromEnv) proxy = parseProxyUrl(fromEnv.text, fromEnv.source);
  }
  if (endpoint.kind === 'tcp') return { endpoint, proxy, host: endpoint.host, port: endpoint.port, wsMode };
  const host = endpoint.url.hostname.replace(/^\[|\]$/g, '');
  const port = endpoint.url.port === '' ? (endpoint.url.protocol === 'wss:' ? 443 : 80) : Number(endpoint.url.port);
  return { endpoint, proxy, host, port, wsMode };
}
