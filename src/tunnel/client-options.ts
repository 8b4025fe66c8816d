import type { SessionOptions } from '../muxado/index.js';
import type { ClientTrust } from '../tls/index.js';
import { parseWebSocketUrl, resolveTransport, type ProxyConfig, type ResolvedTransport, type WebSocketMode } from '../transport/index.js';
import { checkInteger, OptionError, resolveIntegers, type IntegerRule } from '../util/validate.js';
import type { DynamicSpec } from './client-dynamic.js';
import type { ForwardSpec } from './forward.js';
import type { TargetPattern } from './policy.js';
import { PROXY_PROTOCOL_VERSIONS, type ProxyProtocolVersion } from './proxy-protocol.js';
import { silentLogger, type TunnelLogger } from './logger.js';
import { resolveTunnelSessionOptions } from './session-options.js';

/** Timings of `connect`, in ms. */
export interface ClientTimings {
  /** DNS, TCP connect, TLS handshake and the trust check must finish within this. */
  connectTimeoutMs: number;
  /** The server must answer hello within this. */
  handshakeTimeoutMs: number;
  /** Dialling a -R target must succeed within this. */
  dialTimeoutMs: number;
  /** A -R stream's header must arrive within this. */
  headerTimeoutMs: number;
  /** How long a new -L connection waits for a session while (re)connecting. */
  waitForSessionMs: number;
  /** First reconnect delay (doubling, with jitter). */
  backoffBaseMs: number;
  /** Largest reconnect delay. */
  backoffCapMs: number;
}

export const defaultClientTimings: Readonly<ClientTimings> = Object.freeze({
  connectTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  dialTimeoutMs: 10_000,
  headerTimeoutMs: 5_000,
  waitForSessionMs: 10_000,
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
});

const timingRules: Readonly<Record<keyof ClientTimings, IntegerRule>> = Object.freeze({
  connectTimeoutMs: { min: 1, max: 600_000, unit: 'ms' },
  handshakeTimeoutMs: { min: 1, max: 600_000, unit: 'ms' },
  dialTimeoutMs: { min: 1, max: 600_000, unit: 'ms' },
  headerTimeoutMs: { min: 1, max: 600_000, unit: 'ms' },
  waitForSessionMs: { min: 0, max: 600_000, unit: 'ms' },
  backoffBaseMs: { min: 1, max: 3_600_000, unit: 'ms' },
  backoffCapMs: { min: 1, max: 3_600_000, unit: 'ms' },
});

export interface TunnelClientOptions {
  /** The server's host name or address (unless `url` is given). */
  host?: string;
  port?: number;
  /** A `wss://` or `ws://` URL: reach the server's TLS inside a WebSocket (behind a reverse proxy) instead of `host:port`. */
  url?: string | URL;
  /** A proxy to go through; `'direct'`: none, whatever `env` says. Default: for a `url`, HTTPS_PROXY/HTTP_PROXY/NO_PROXY from `env`. */
  proxy?: ProxyConfig | 'direct';
  /** Where the HTTP proxy variables are read (WebSocket servers only). Default: none. */
  env?: NodeJS.ProcessEnv;
  /**
   * How the TLS travels inside the WebSocket (`url` only): `'stream'`, TLS straight on the
   * socket after one frame header (fast; needs a proxy that passes the upgraded connection
   * through, as nginx, Caddy, HAProxy do), or `'messages'`, 16 KiB binary messages (for
   * proxies and CDNs that re-frame messages, and servers before stream mode). Default `'stream'`.
   */
  wsMode?: WebSocketMode;
  /** SNI / CA host name, when it differs from `host`. */
  servername?: string;
  token: string;
  trust: ClientTrust;
  /** -L forwards: listen here, the server dials the target. */
  local?: ForwardSpec[];
  /** -R forwards: the server listens, this side dials the target. */
  remote?: ForwardSpec[];
  /**
   * What a reverse dynamic -R may reach from this side (the pattern language of serve's --allow-local).
   * Empty (the default): anything this side can reach.
   */
  allowTarget?: TargetPattern[];
  /**
   * -R forwards (not reverse dynamic ones) write a PROXY protocol header of
   * this version to their target before the forwarded bytes, naming who
   * connected to the server's listener; a forward's own `proxyProtocol`
   * wins. Default: none.
   */
  proxyProtocol?: ProxyProtocolVersion;
  /** -D: SOCKS4/4a/5 listeners here; the server resolves and dials each requested target (under its --allow-local). */
  dynamic?: DynamicSpec[];
  /** Retry an unreachable server, at start too, and reconnect when the session drops. Default true. */
  reconnect?: boolean;
  /** Run with the forwards that work when some cannot be set up at start. Default false: `run()` rejects naming the forward. */
  keepGoing?: boolean;
  /** Keep forwarded connections across a dropped link, when the server offers it. Default true. */
  resume?: boolean;
  /** Default: `defaultClientTimings`. */
  timings?: Partial<ClientTimings>;
  /** Engine options (heartbeat timing and the like). */
  session?: SessionOptions;
  /** Default: logs nothing. */
  logger?: TunnelLogger;
}

export interface ResolvedClientOptions {
  /** The name and port the server's TLS is checked against (from `url` for a WebSocket). */
  host: string;
  port: number;
  /** How its bytes travel: directly, through a proxy, in a WebSocket. */
  transport: ResolvedTransport;
  servername: string | undefined;
  token: string;
  trust: ClientTrust;
  local: ForwardSpec[];
  remote: ForwardSpec[];
  dynamic: DynamicSpec[];
  allowTarget: TargetPattern[];
  proxyProtocol: ProxyProtocolVersion | undefined;
  reconnect: boolean;
  keepGoing: boolean;
  resume: boolean;
  timings: ClientTimings;
  session: SessionOptions;
  logger: TunnelLogger;
}

const TRUST_KINDS = new Set(['fingerprint', 'ca', 'tofu', 'insecure']);

/** Validates a client's options once, naming what is wrong (`ERR_MUXTUN_INVALID_ARGUMENT`), and fills in defaults. */
export function resolveClientOptions(options: TunnelClientOptions): ResolvedClientOptions {
  let transport: ResolvedTransport;
  if (options.url !== undefined) {
    if (options.host !== undefined || options.port !== undefined) throw new OptionError('url', 'either url or host and port, not both', String(options.url));
    transport = resolveTransport({ endpoint: { kind: 'websocket', url: parseWebSocketUrl(String(options.url)) }, ...transportExtras(options) });
  } else {
    if (typeof options.host !== 'string' || options.host === '') throw new OptionError('host', 'the server\'s host name or address', options.host);
    const tcpPort = checkInteger('port', options.port, { min: 1, max: 65535 });
    transport = resolveTransport({ endpoint: { kind: 'tcp', host: options.host, port: tcpPort }, ...transportExtras(options) });
  }
  const { host, port } = transport;
  if (typeof options.token !== 'string' || options.token === '') throw new OptionError('token', 'a non-empty string', options.token);
  if (!TRUST_KINDS.has(options.trust?.kind)) throw new OptionError('trust', `one of ${[...TRUST_KINDS].join(', ')}`, options.trust?.kind);
  const local = checkForwards('local', options.local ?? [], 0);
  const remote = checkForwards('remote', options.remote ?? [], 0);
  const dynamic = checkDynamic('dynamic', options.dynamic ?? []);
  rejectDuplicateBinds([...local.map((spec, index) => ({ field: `local[${index}]`, spec })), ...dynamic.map((spec, index) => ({ field: `dynamic[${index}]`, spec }))]);
  rejectDuplicateBinds(remote.map((spec, index) => ({ field: `remote[${index}]`, spec })));
  if (options.proxyProtocol !== undefined && !PROXY_PROTOCOL_VERSIONS.includes(options.proxyProtocol)) throw new OptionError('proxyProtocol', `one of ${PROXY_PROTOCOL_VERSIONS.join(', ')}`, options.proxyProtocol);
  if (options.reconnect !== undefined && typeof options.reconnect !== 'boolean') throw new OptionError('reconnect', 'true or false', options.reconnect);
  if (options.keepGoing !== undefined && typeof options.keepGoing !== 'boolean') throw new OptionError('keepGoing', 'true or false', options.keepGoing);
  if (options.resume !== undefined && typeof options.resume !== 'boolean') throw new OptionError('resume', 'true or false', options.resume);
  const timings = resolveIntegers<ClientTimings>('timings', options.timings, defaultClientTimings, timingRules);
  if (timings.backoffCapMs < timings.backoffBaseMs) throw new OptionError('timings.backoffCapMs', `at least timings.backoffBaseMs (${timings.backoffBaseMs})`, timings.backoffCapMs);
  return {
    host,
    port,
    transport,
    servername: options.servername,
    token: options.token,
    trust: options.trust,
    local,
    remote,
    dynamic,
    allowTarget: options.allowTarget ?? [],
    proxyProtocol: options.proxyProtocol,
    reconnect: options.reconnect ?? true,
    keepGoing: options.keepGoing ?? false,
    resume: options.resume ?? true,
    timings,
    session: resolveTunnelSessionOptions(options.session),
    logger: options.logger ?? silentLogger,
  };
}

/** One forward to add to a running client: the checks `resolveClientOptions` makes on each; throws an OptionError naming `kind`. */
export function checkForwardSpec(kind: 'local' | 'remote' | 'dynamic', spec: ForwardSpec | DynamicSpec): void {
  if (kind === 'dynamic') checkDynamic(kind, [spec]);
  else checkForwards(kind, [spec as ForwardSpec], 0);
}

function checkDynamic(field: string, specs: DynamicSpec[]): DynamicSpec[] {
  if (!Array.isArray(specs)) throw new OptionError(field, 'an array of listeners', specs);
  specs.forEach((spec, index) => {
    if (typeof spec?.bindHost !== 'string' || spec.bindHost === '') throw new OptionError(`${field}[${index}].bindHost`, 'an address', spec?.bindHost);
    checkInteger(`${field}[${index}].bindPort`, spec.bindPort, { min: 0, max: 65535 });
  });
  return specs;
}

/** Two listeners on one address is a typo, not a runtime EADDRINUSE (port 0, any free port, may repeat). */
function rejectDuplicateBinds(specs: ReadonlyArray<{ field: string; spec: { bindHost: string; bindPort: number } }>): void {
  const seen = new Map<string, string>();
  for (const { field, spec } of specs) {
    if (spec.bindPort === 0) continue;
    const key = `${spec.bindHost}:${spec.bindPort}`;
    const first = seen.get(key);
    if (first !== undefined) throw new OptionError(`${field}.bindPort`, `an address not taken by ${first} (${key})`, spec.bindPort);
    seen.set(key, field);
  }
}

/**
 * The settings of `next` that differ from `current` and that a running
 * client cannot take on without a new connection (the server, the token,
 * trust, timings...), named as the fields of TunnelClientOptions. The
 * forwards and `allowTarget` are not among them: they change live.
 */
export function settingsNeedingRestart(current: ResolvedClientOptions, next: ResolvedClientOptions): string[] {
  const differs = (a: unknown, b: unknown): boolean => JSON.stringify(a) !== JSON.stringify(b);
  const out: string[] = [];
  const [a, b] = [current.transport.endpoint, next.transport.endpoint];
  if (a.kind === 'websocket' || b.kind === 'websocket') {
    if (differs(a, b)) out.push('url');
  } else {
    if (a.host !== b.host) out.push('host');
    if (a.port !== b.port) out.push('port');
  }
  if (differs(current.transport.proxy, next.transport.proxy)) out.push('proxy');
  if (current.transport.wsMode !== next.transport.wsMode) out.push('wsMode');
  if (current.servername !== next.servername) out.push('servername');
  if (current.token !== next.token) out.push('token');
  if (trustKey(current.trust) !== trustKey(next.trust)) out.push('trust');
  for (const field of ['proxyProtocol', 'reconnect', 'keepGoing', 'resume'] as const) if (current[field] !== next[field]) out.push(field);
  for (const field of Object.keys(current.timings) as Array<keyof ClientTimings>) if (current.timings[field] !== next.timings[field]) out.push(`timings.${field}`);
  if (differs(current.session, next.session)) out.push('session');
  return out;
}

/** Trust compared by what it trusts (a known_hosts store by its place: the CLI makes a new object per reload). */
function trustKey(trust: ClientTrust): string {
  switch (trust.kind) {
    case 'fingerprint':
      return `fingerprint ${trust.fingerprint}`;
    case 'ca':
      return `ca ${trust.caPem}`;
    case 'tofu':
      return `tofu ${trust.knownHosts.description}`;
    default:
      return trust.kind;
  }
}

function checkForwards(field: string, specs: ForwardSpec[], minBindPort: number): ForwardSpec[] {
  if (!Array.isArray(specs)) throw new OptionError(field, 'an array of forwards', specs);
  specs.forEach((spec, index) => {
    if (spec?.dynamic === undefined) return;
    if (typeof spec.dynamic !== 'boolean') throw new OptionError(`${field}[${index}].dynamic`, 'true or false', spec.dynamic);
    if (spec.dynamic && field !== 'remote') throw new OptionError(`${field}[${index}].dynamic`, 'false: only -R forwards can be dynamic (use `dynamic` for -D)', spec.dynamic);
  });
  specs.forEach((spec, index) => {
    if (spec?.proxyProtocol === undefined) return;
    const at = `${field}[${index}].proxyProtocol`;
    if (field !== 'remote') throw new OptionError(at, 'absent: only -R forwards write PROXY headers (serve --proxy-protocol does it for -L)', spec.proxyProtocol);
    if (spec.proxyProtocol !== 'off' && !PROXY_PROTOCOL_VERSIONS.includes(spec.proxyProtocol)) throw new OptionError(at, `one of ${PROXY_PROTOCOL_VERSIONS.join(', ')}, off`, spec.proxyProtocol);
    if (spec.dynamic === true && spec.proxyProtocol !== 'off') throw new OptionError(at, 'absent on a reverse dynamic -R: its targets are whatever SOCKS clients ask for', spec.proxyProtocol);
  });
  checkTargets(field, specs, minBindPort);
  return specs;
}

function checkTargets(field: string, specs: ForwardSpec[], minBindPort: number): void {
  if (!Array.isArray(specs)) throw new OptionError(field, 'an array of forwards', specs);
  specs.forEach((spec, index) => {
    const at = `${field}[${index}]`;
    if (typeof spec?.bindHost !== 'string' || spec.bindHost === '') throw new OptionError(`${at}.bindHost`, 'an address', spec?.bindHost);
    checkInteger(`${at}.bindPort`, spec.bindPort, { min: minBindPort, max: 65535 });
    if (spec.dynamic === true) return;
    if (typeof spec.targetHost !== 'string' || spec.targetHost === '') throw new OptionError(`${at}.targetHost`, 'a host name or address', spec.targetHost);
    checkInteger(`${at}.targetPort`, spec.targetPort, { min: 1, max: 65535 });
  });
}

function transportExtras(options: TunnelClientOptions): { proxy?: ProxyConfig | 'direct'; env?: NodeJS.ProcessEnv; wsMode?: WebSocketMode } {
  if (options.proxy !== undefined && options.proxy !== 'direct' && (typeof options.proxy !== 'object' || typeof options.proxy.host !== 'string')) {
    throw new OptionError('proxy', "a proxy (parseProxyUrl) or 'direct'", options.proxy);
  }
  return {
    ...(options.proxy !== undefined ? { proxy: options.proxy } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.wsMode !== undefined ? { wsMode: options.wsMode } : {}),
  };
}
