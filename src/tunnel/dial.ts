import net from 'node:net';
import { ErrorCode, type Stream } from '../muxado/index.js';
import { bridge, type BridgeEnd } from './bridge.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import type { DialTimes, TrafficRoute } from './tunnel-stats.js';

export interface DialOptions {
  host: string;
  port: number;
  /** Give up on a target that does not answer within this many ms. */
  timeoutMs: number;
  /** The target answered: the socket is the caller's (or bridged to the stream, for dialAndBridge). */
  onConnected?(socket: net.Socket): void;
  /** Dialling failed; the stream is reset (CANCEL) right after, unless `keepStream`. */
  onFailed(error: Error): void;
  /** Leave the stream to `onFailed` (a DYNAMIC stream says why in a dial reply instead of a reset). */
  keepStream?: boolean;
  /** The bridged connection ended (see bridge()); dialAndBridge only. */
  onEnd?(end: BridgeEnd): void;
  /** Where a successful dial's time is recorded. */
  dialTimes?: DialTimes;
  /** Where the bridged connection counts (see bridge()); dialAndBridge only. */
  route?: TrafficRoute;
}

/**
 * Dials a forward's target for a stream. Data the peer sends meanwhile
 * waits in the stream (flow control bounds it); a stream that ends first
 * aborts the dial. The socket's own timer bounds the dial, so a connection
 * costs no extra Timeout. On success the socket has no 'error' listener of
 * ours left: the caller attaches its own in `onConnected`.
 */
export function dialTarget(stream: Stream, options: DialOptions): void {
  const { host, port, timeoutMs } = options;
  const started = performance.now();
  // noDelay, as OpenSSH sets on forwarded sockets: a reply written in pieces must not wait for an ACK (Nagle).
  const socket = net.connect({ host, port, allowHalfOpen: true, noDelay: true, timeout: timeoutMs });
  const onTimeout = (): void => {
    socket.destroy(new TunnelError(TunnelErrorCode.DIAL, `no answer within ${timeoutMs} ms`));
  };
  const abortDial = (): void => {
    socket.destroy();
  };
  socket.once('timeout', onTimeout);
  stream.once('close', abortDial);
  socket.once('connect', () => {
    socket.setTimeout(0);
    socket.off('timeout', onTimeout);
    stream.off('close', abortDial);
    socket.removeAllListeners('error');
    options.dialTimes?.observe(performance.now() - started);
    options.onConnected?.(socket);
  });
  socket.once('error', (error) => {
    if (stream.destroyed) return;
    options.onFailed(error);
    if (options.keepStream !== true) stream.reset(ErrorCode.CANCEL);
  });
}

/** Dials a forward's target and bridges it to the stream. */
export function dialAndBridge(stream: Stream, options: DialOptions): void {
  dialTarget(stream, {
    ...options,
    onConnected: (socket) => {
      options.onConnected?.(socket);
      bridge(socket, stream, options.onEnd, options.route);
    },
  });
}
