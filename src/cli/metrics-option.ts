/**
 * `--metrics [host:]port` of serve and connect: the text turned into an
 * address (the host defaults to 127.0.0.1: the endpoint has no
 * authentication), and the endpoint started beside the tunnel.
 */
import type { TunnelClient, TunnelLogger, TunnelServer } from '../tunnel/index.js';
import { parsePort } from './forward-spec.js';
import { UsageError } from './usage-error.js';

export const METRICS_FLAG = '--metrics <[host:]port>';
export const METRICS_HELP = 'serve Prometheus metrics at http://HOST:PORT/metrics (host default 127.0.0.1; off by default)';

export interface MetricsAddress {
  host: string;
  port: number;
}

/** `9100`, `0.0.0.0:9100`, `[::1]:9100`; port 0 picks a free one (logged). */
export function parseMetricsAddress(text: string, flag: string): MetricsAddress {
  const context = `${flag} ${text}`;
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { host: '127.0.0.1', port: parsePort(text, context, true) };
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (host === '' || /[\s/]/.test(host)) throw new UsageError(`${context}: "${host}" is not a host to listen on`);
  return { host, port: parsePort(text.slice(colon + 1), context, true) };
}

/** Starts the endpoint and logs where; resolves with its stop. Rejects with ERR_MUXTUN_BIND when it cannot listen. */
export async function startMetrics(source: { client: TunnelClient } | { server: TunnelServer }, address: MetricsAddress, logger: TunnelLogger): Promise<() => Promise<void>> {
  // Loaded only with --metrics: prom-client costs a start without it a third of a second.
  const { serveMetrics } = await import('../metrics/index.js');
  const endpoint = await serveMetrics(source, address);
  const { address: host, port } = endpoint.address;
  logger.info({ address: `${host.includes(':') ? `[${host}]` : host}:${port}`, path: '/metrics' }, 'serving Prometheus metrics');
  return () => endpoint.close();
}
