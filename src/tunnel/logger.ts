import { describeError } from '../util/errors.js';

/** The logging the tunnel needs; a pino logger fits it. The tunnel never formats output itself. */
export interface TunnelLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child(bindings: Record<string, unknown>): TunnelLogger;
  /** Whether a level is logged (pino has it): lets per-connection lines cost nothing when off. */
  isLevelEnabled?(level: 'debug' | 'info' | 'warn' | 'error'): boolean;
}

/** A logger that drops everything (the default for library use). */
export const silentLogger: TunnelLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
  isLevelEnabled() {
    return false;
  },
};

/** Why listen() failed, in words a user can act on. */
export function describeListenError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException)?.code) {
    case 'EADDRINUSE':
      return 'the port is already in use (EADDRINUSE)';
    case 'EACCES':
      return 'permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE (EACCES)';
    case 'EADDRNOTAVAIL':
      return 'the address does not belong to this machine (EADDRNOTAVAIL)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the bind host name does not resolve';
    default:
      return describeError(error);
  }
}
