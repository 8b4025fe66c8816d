import type { SessionOptions } from '../muxado/index.js';
import { checkInteger, OptionError } from '../util/validate.js';
import { DEFAULT_WS_PATH } from '../transport/index.js';
import { MIN_TOKEN_LENGTH } from './auth.js';
import { silentLogger, type TunnelLogger } from './logger.js';
import { defaultPolicy, type ServerPolicy } from './policy.js';
import { PROXY_PROTOCOL_VERSIONS, type ProxyProtocolVersion } from './proxy-protocol.js';
import { resolveServerLimits, type ServerLimits } from './server-limits.js';
import { resolveTunnelSessionOptions } from './session-options.js';
import { checkPolicy, DEFAULT_USER, hashToken, resolveUsers, type TunnelUser } from './users.js';

export interface TunnelServerOptions {
  /** Address to listen on. */
  host: string;
  /** TLS port; 0 for any free port. */
  port: number;
  /** Listen on the TLS port. Default true; false needs `webSocket` (the server then runs behind a reverse proxy alone). */
  tlsListen?: boolean;
  /** Also accept the tunnel's TLS inside WebSockets (plain HTTP, behind a reverse proxy that terminates the public TLS). */
  webSocket?: { host: string; port: number; path?: string };
  /** PEM certificate and key. */
  tls: { cert: string; key: string };
  /**
   * The shared secret clients present; at least 16 characters. The simple
   * case of `users`: one user named `default` with the server-wide rights.
   * At least one of `token` and `users` must be given.
   */
  token?: string;
  /**
   * Users, each with its own tokens (as hashes) and rights: see TunnelUser.
   * May be empty (nobody can connect until `reconfigure` adds someone). With
   * `token` too, no user may be named `default`.
   */
  users?: TunnelUser[];
  /** What clients may reach and bind. Default: -L anywhere, -R on ports 1024-65535. */
  policy?: ServerPolicy;
  /** Default: `defaultServerLimits`. */
  limits?: Partial<ServerLimits>;
  /** Engine options (heartbeat timing and the like). */
  session?: SessionOptions;
  /** How long a session whose link dropped is kept for the client to resume it, in ms; 0 turns resumption off. Default 60,000. */
  resumeGraceMs?: number;
  /**
   * -L targets this server dials get a PROXY protocol header of this
   * version first, naming who connected to the client's -L listener (sent
   * by clients since this option exists; older ones: v1 UNKNOWN / v2
   * LOCAL). Not -D or -W: their targets are whatever was asked for.
   * Default: none.
   */
  proxyProtocol?: ProxyProtocolVersion;
  /** Default: logs nothing. */
  logger?: TunnelLogger;
}

/** Default of `resumeGraceMs`. */
export const DEFAULT_RESUME_GRACE_MS = 60_000;

export interface ResolvedServerOptions {
  host: string;
  port: number;
  tlsListen: boolean;
  webSocket: { host: string; port: number; path: string } | undefined;
  tls: { cert: string; key: string };
  /** Every user, the `default` of `token` included. */
  users: TunnelUser[];
  policy: ServerPolicy;
  limits: ServerLimits;
  session: SessionOptions;
  resumeGraceMs: number;
  proxyProtocol: ProxyProtocolVersion | undefined;
  logger: TunnelLogger;
}

/** Validates a server's options once, naming what is wrong (`ERR_MUXTUN_INVALID_ARGUMENT`), and fills in defaults. */
export function resolveServerOptions(options: TunnelServerOptions): ResolvedServerOptions {
  if (typeof options.host !== 'string' || options.host === '') throw new OptionError('host', 'an address to listen on', options.host);
  const port = checkInteger('port', options.port, { min: 0, max: 65535 });
  if (typeof options.tls?.cert !== 'string' || typeof options.tls.key !== 'string') throw new OptionError('tls', 'a PEM certificate and key', options.tls);
  if (options.token === undefined && options.users === undefined) throw new OptionError('token', 'given, or users (someone must be able to connect)', undefined);
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < MIN_TOKEN_LENGTH)) {
    throw new OptionError('token', `at least ${MIN_TOKEN_LENGTH} characters (a short token can be guessed)`, typeof options.token === 'string' ? `${options.token.length} characters` : options.token);
  }
  const users = resolveUsers(options.users ?? []);
  if (options.token !== undefined) {
    const index = users.findIndex((u) => u.name === DEFAULT_USER);
    if (index >= 0) throw new OptionError(`users[${index}].name`, `another name: the token is the user "${DEFAULT_USER}"`, DEFAULT_USER);
    const hash = hashToken(options.token);
    const owner = users.find((u) => u.tokens.includes(hash));
    if (owner) throw new OptionError('token', `a token no user has (user ${owner.name} has it too)`, 'that token');
    users.push({ name: DEFAULT_USER, tokens: [hash] });
  }
  if (options.tlsListen !== undefined && typeof options.tlsListen !== 'boolean') throw new OptionError('tlsListen', 'true or false', options.tlsListen);
  const tlsListen = options.tlsListen ?? true;
  let webSocket: ResolvedServerOptions['webSocket'];
  if (options.webSocket !== undefined) {
    const ws = options.webSocket;
    if (typeof ws?.host !== 'string' || ws.host === '') throw new OptionError('webSocket.host', 'an address to listen on', ws?.host);
    const path = ws.path ?? DEFAULT_WS_PATH;
    if (typeof path !== 'string' || !/^\/[\x21-\x7e]{0,200}$/.test(path) || path.includes('?') || path.includes('#')) {
      throw new OptionError('webSocket.path', 'a URL path starting with / (no spaces, query or fragment)', path);
    }
    webSocket = { host: ws.host, port: checkInteger('webSocket.port', ws.port, { min: 0, max: 65535 }), path };
  }
  if (options.proxyProtocol !== undefined && !PROXY_PROTOCOL_VERSIONS.includes(options.proxyProtocol)) throw new OptionError('proxyProtocol', `one of ${PROXY_PROTOCOL_VERSIONS.join(', ')}`, options.proxyProtocol);
  if (!tlsListen && !webSocket) throw new OptionError('tlsListen', 'true unless webSocket is set (the server must listen somewhere)', false);
  return {
    host: options.host,
    port,
    tlsListen,
    webSocket,
    // Only the PEM: a reconfigure compares it with the running one, and callers pass richer objects (fingerprint, created).
    tls: { cert: options.tls.cert, key: options.tls.key },
    users,
    policy: options.policy === undefined ? defaultPolicy : checkPolicy('policy', options.policy),
    limits: resolveServerLimits(options.limits),
    session: resolveTunnelSessionOptions(options.session),
    resumeGraceMs: options.resumeGraceMs === undefined ? DEFAULT_RESUME_GRACE_MS : checkInteger('resumeGraceMs', options.resumeGraceMs, { min: 0, max: 86_400_000, unit: 'ms' }),
    proxyProtocol: options.proxyProtocol,
    logger: options.logger ?? silentLogger,
  };
}
