import pino from 'pino';
import pretty from 'pino-pretty';
import type { TunnelLogger } from '../tunnel/index.js';
import { UsageError } from './usage-error.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogFormat = 'pretty' | 'json';

/**
 * Logs go to stderr: pretty on a terminal, JSON lines otherwise (or as asked).
 * Writes are synchronous so nothing is lost when the process exits.
 */
export function createLogger(level: string, format: string | undefined): pino.Logger & TunnelLogger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level: "${level}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const chosen = format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (chosen !== 'pretty' && chosen !== 'json') throw new UsageError(`--log-format: "${chosen}" is not pretty or json`);
  const options: pino.LoggerOptions = { level, base: { pid: process.pid } };
  if (chosen === 'json') return pino(options, pino.destination({ fd: 2, sync: true }));
  return pino(
    options,
    pretty({ destination: 2, sync: true, colorize: Boolean(process.stderr.isTTY), ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' }),
  );
}
