import { InvalidArgumentError } from '../errors.js';

/** A client-side proxy, parsed from `http://`, `socks5://` or `socks5h://` URLs. */
export interface ProxyConfig {
  /** `http`: HTTP CONNECT. `socks5`: SOCKS5, names resolved here. `socks5h`: SOCKS5, names resolved by the proxy. */
  protocol: 'http' | 'socks5' | 'socks5h';
  host: string;
  port: number;
  /** Credentials, when the URL had them (percent-decoded). Never logged. */
  username?: string;
  password?: string;
}

const DEFAULT_PORTS = { http: 80, socks5: 1080, socks5h: 1080 } as const;

/**
 * Parses a proxy URL (`--proxy`, `MUXTUN_PROXY`, `HTTPS_PROXY`). The error
 * names the URL without its credentials.
 *
 * @throws {@link InvalidArgumentError} for anything but http/socks5/socks5h URLs with a host
 */
export function parseProxyUrl(text: string, source = 'proxy'): ProxyConfig {
  let url: URL;
  try {
    url = new URL(text.includes('://') ? text : `http://${text}`);
  } catch {
    throw new InvalidArgumentError(`Invalid ${source} "${redactUrl(text)}": expected http://[user:pass@]host:port or socks5://[user:pass@]host:port`);
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== 'http' && protocol !== 'socks5' && protocol !== 'socks5h') {
    const hint = protocol === 'https' ? ' (a TLS connection to the proxy itself is not supported; most proxies given as https:// also take http://)' : '';
    throw new InvalidArgumentError(`Invalid ${source} "${redactUrl(text)}": the scheme ${protocol}:// is not supported; use http://, socks5:// or socks5h://${hint}`);
  }
  if (url.hostname === '') throw new InvalidArgumentError(`Invalid ${source} "${redactUrl(text)}": no host`);
  if (url.pathname !== '/' && url.pathname !== '') throw new InvalidArgumentError(`Invalid ${source} "${redactUrl(text)}": a proxy URL has no path`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    protocol,
    host,
    port: url.port === '' ? DEFAULT_PORTS[protocol] : Number(url.port),
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/** `scheme://host:port` of a proxy, for logs and errors: never the credentials. */
export function describeProxy(proxy: ProxyConfig): string {
  const host = proxy.host.includes(':') ? `[${proxy.host}]` : proxy.host;
  return `${proxy.protocol}://${host}:${proxy.port}`;
}

/** A URL as text with any `user:pass@` replaced by `***@`. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z0-9+.-]+:\/\/)[^@/]*@/i, '$1***@');
}

/**
 * The proxy an HTTP client would use for `url` from the environment, as curl
 * and most tools read it: `HTTPS_PROXY` for wss://, `HTTP_PROXY` for ws://
 * (lower case first), skipped when `NO_PROXY` matches the host (`*`, a name,
 * a `.domain` or `domain` suffix, optionally with `:port`).
 */
export function proxyFromEnv(url: URL, env: NodeJS.ProcessEnv): { text: string; source: string } | undefined {
  const secure = url.protocol === 'wss:' || url.protocol === 'https:';
  const names = secure ? ['https_proxy', 'HTTPS_PROXY'] : ['http_proxy', 'HTTP_PROXY'];
  let found: { text: string; source: string } | undefined;
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      found = { text: value, source: name };
      break;
    }
  }
  if (!found) return undefined;
  const noProxy = env.no_proxy ?? env.NO_PROXY ?? '';
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (secure ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return undefined;
    const [name = '', entryPort] = entry.startsWith('[') ? [entry.slice(1, entry.indexOf(']')), entry.slice(entry.indexOf(']') + 2) || undefined] : entry.split(':');
    if (entryPort !== undefined && entryPort !== port) continue;
    const bare = name.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return undefined;
  }
  return found;
}
