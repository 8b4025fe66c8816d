import { SessionClosedError, StreamResetError, errorCodeName } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import type { BridgeEnd } from './bridge.js';
import type { TunnelLogger } from './logger.js';

/** What names one forwarded connection in the logs: its forward, who connected and where it goes. */
export interface ConnectionFields {
  forward: string;
  peer: string;
  target: string;
  streamId?: number;
}

/** How a forwarded connection ended, in words: `fin`, or who reset it and why. */
export function describeEnd(error: Error | undefined): string {
  if (error === undefined) return 'fin';
  if (error instanceof StreamResetError) return `reset by ${error.remote ? 'the other end of the tunnel' : 'this side'} (${errorCodeName(error.errorCode)})`;
  if (error instanceof SessionClosedError) return `the tunnel's session ended (${error.message})`;
  return `reset (${describeError(error)})`;
}

/**
 * The two debug lines `-v` shows for every forwarded connection: when it
 * opened, and when it closed with the bytes each way, how long it lived and
 * how it ended. Returns the function that writes the second line.
 */
export function logConnection(logger: TunnelLogger, fields: ConnectionFields): ((end: BridgeEnd) => void) | undefined {
  if (logger.isLevelEnabled?.('debug') === false) return undefined;
  const started = performance.now();
  logger.debug(fields, 'connection opened');
  return (end) =>
    logger.debug(
      { ...fields, bytesUp: end.bytesUp, bytesDown: end.bytesDown, durationMs: Math.round(performance.now() - started), end: describeEnd(end.error) },
      'connection closed',
    );
}
