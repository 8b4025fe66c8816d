import type { SessionOptions } from '../muxado/index.js';
import { checkInteger, OptionError } from '../util/validate.js';
import { MIN_TOKEN_LENGTH } from './auth.js';
import { silentLogger, type TunnelLogger } from './logger.js';
import { defaultPolicy, type ServerPolicy } from './policy.js';
import { resolveServerLimits, type ServerLimits } from './server-limits.js';
import { resolveTunnelSessionOptions } from './session-options.js';

export interface TunnelServerOptions {
  /** Address to listen on. */
  host: string;
  /** TLS port; 0 for any free port. */
  port: number;
  /** PEM certificate and key. */
  tls: { cert: string; key: string };
  /** The shared secret clients present; at least 16 characters. */
  token: string;
  /** What clients may reach and bind. Default: -L anywhere, -R on ports 1024-65535. */
  policy?: ServerPolicy;
  /** Default: `defaultServerLimits`. */
  limits?: Partial<ServerLimits>;
  /** Engine options (heartbeat timing and the like). */
  session?: SessionOptions;
  /** How long a session whose link dropped is kept for the client to resume it, in ms; 0 turns resumption off. Default 60,000. */
  resumeGraceMs?: number;
  /** Default: logs nothing. */
  logger?: TunnelLogger;
}

/** Default of `resumeGraceMs`. */
export const DEFAULT_RESUME_GRACE_MS = 60_000;

export interface ResolvedServerOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string };
  token: string;
  policy: ServerPolicy;
  limits: ServerLimits;
  session: SessionOptions;
  resumeGraceMs: number;
  logger: TunnelLogger;
}

/** Validates a server's options once, naming what is wrong (`ERR_MUXTUN_INVALID_ARGUMENT`), and fills in defaults. */
export function resolveServerOptions(options: TunnelServerOptions): ResolvedServerOptions {
  if (typeof options.host !== 'string' || options.host === '') throw new OptionError('host', 'an address to listen on', options.host);
  const port = checkInteger('port', options.port, { min: 0, max: 65535 });
  if (typeof options.tls?.cert !== 'string' || typeof options.tls.key !== 'string') throw new OptionError('tls', 'a PEM certificate and key', options.tls);
  if (typeof options.token !== 'string' || options.token.length < MIN_TOKEN_LENGTH) {
    throw new OptionError('token', `at least ${MIN_TOKEN_LENGTH} characters (a short token can be guessed)`, typeof options.token === 'string' ? `${options.token.length} characters` : options.token);
  }
  return {
    host: options.host,
    port,
    tls: options.tls,
    token: options.token,
    policy: options.policy ?? defaultPolicy,
    limits: resolveServerLimits(options.limits),
    session: resolveTunnelSessionOptions(options.session),
    resumeGraceMs: options.resumeGraceMs === undefined ? DEFAULT_RESUME_GRACE_MS : checkInteger('resumeGraceMs', options.resumeGraceMs, { min: 0, max: 86_400_000, unit: 'ms' }),
    logger: options.logger ?? silentLogger,
  };
}
