/**
 * Prometheus metrics of a running `connect` or `serve` (`--metrics`). The
 * only module that imports prom-client: the tunnel layer counts in plain
 * numbers (src/tunnel/tunnel-stats.ts) and works without it.
 */
import type { AddressInfo } from 'node:net';
import { TunnelError, TunnelErrorCode, type TunnelClient, type TunnelServer } from '../tunnel/index.js';
import { describeListenError } from '../tunnel/logger.js';
import { MetricsListener } from './listener.js';
import { clientRegistry, serverRegistry } from './registry.js';

export { clientRegistry, serverRegistry, PREFIX } from './registry.js';
export { MetricsListener, MAX_METRICS_CONNECTIONS, METRICS_REQUEST_TIMEOUT_MS } from './listener.js';

/** A `/metrics` endpoint for `source`, listening on host:port; `close()` stops it. Rejects with ERR_MUXTUN_BIND when it cannot listen. */
export async function serveMetrics(source: { client: TunnelClient } | { server: TunnelServer }, address: { host: string; port: number }): Promise<{ address: AddressInfo; close(): Promise<void> }> {
  const registry = 'client' in source ? clientRegistry(source.client) : serverRegistry(source.server);
  const listener = new MetricsListener(registry);
  let bound: AddressInfo;
  try {
    bound = await listener.listen(address.host, address.port);
  } catch (error) {
    throw new TunnelError(TunnelErrorCode.BIND, `cannot listen for metrics on ${address.host}:${address.port}: ${describeListenError(error)}`, { cause: error });
  }
  return { address: bound, close: () => listener.close() };
}
