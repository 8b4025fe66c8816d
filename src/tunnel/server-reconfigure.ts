import type { ResolvedServerOptions } from './server-options.js';
import type { ServerLimits } from './server-limits.js';
import { DEFAULT_USER } from './users.js';

/** What `TunnelServer.reconfigure` did with the fields that changed (option paths: `port`, `limits.maxStreams`, `users`). */
export interface ReconfigureResult {
  /** Changed and in effect now. */
  applied: string[];
  /** Changed, but kept as they were: they take a restart (the listening sockets, the TLS identity). */
  restartNeeded: string[];
}

/** Fields a running server cannot change: its sockets and TLS server were made with them. */
const RESTART_FIELDS = ['host', 'port', 'tlsListen', 'webSocket', 'tls'] as const;
/** The TLS server's handshake timeout is fixed when it is created. */
const RESTART_LIMITS: ReadonlySet<keyof ServerLimits> = new Set(['handshakeTimeoutMs']);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Which fields differ between the running options and new ones, sorted by whether they can change live. */
export function compareServerOptions(current: ResolvedServerOptions, next: ResolvedServerOptions): ReconfigureResult {
  const applied: string[] = [];
  const restartNeeded: string[] = [];
  for (const field of RESTART_FIELDS) if (!same(current[field], next[field])) restartNeeded.push(field);
  const defaultOf = (o: ResolvedServerOptions): unknown => o.users.find((u) => u.name === DEFAULT_USER);
  const othersOf = (o: ResolvedServerOptions): unknown => o.users.filter((u) => u.name !== DEFAULT_USER);
  if (!same(defaultOf(current), defaultOf(next))) applied.push('token');
  if (!same(othersOf(current), othersOf(next))) applied.push('users');
  for (const field of ['allowLocal', 'allowRemote'] as const) {
    if (!same(current.policy[field], next.policy[field])) applied.push(`policy.${field}`);
  }
  for (const field of Object.keys(current.limits) as Array<keyof ServerLimits>) {
    if (current.limits[field] === next.limits[field]) continue;
    (RESTART_LIMITS.has(field) ? restartNeeded : applied).push(`limits.${field}`);
  }
  if (!same(current.session, next.session)) applied.push('session');
  if (current.resumeGraceMs !== next.resumeGraceMs) applied.push('resumeGraceMs');
  if (current.proxyProtocol !== next.proxyProtocol) applied.push('proxyProtocol');
  return { applied, restartNeeded };
}
