/**
 * The Prometheus registries of `connect` and `serve`: the tunnel's counters
 * read at scrape time, plus prom-client's default process metrics
 * (`process_*`, `nodejs_*`, under their usual names so stock dashboards work).
 *
 * Label sets are bounded: `direction` (L, R, D, W), `result` (4 values),
 * `flow` (in, out), `limit` (5 names), `state` (active, detached), and on
 * serve `user`, which is bounded by the users file (one value, `default`,
 * with a single token). No label names a connection, a session or an address.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import {
  DIAL_BUCKETS_SECONDS,
  DIRECTIONS,
  LIMIT_NAMES,
  STREAM_RESULTS,
  type DialTimesSnapshot,
  type Direction,
  type DirectionSnapshot,
  type TunnelClient,
  type TunnelServer,
} from '../tunnel/index.js';
import { histogramSamples, register, type Sample } from './collected.js';

/** Prefix of every metric of ours. */
export const PREFIX = 'muxtun_';

/** What the server counts by user (-W arrives as a dynamic stream: D). */
const SERVER_DIRECTIONS: readonly Direction[] = ['L', 'R', 'D'];
/** The sides that dial: the server for -L and -D/-W, the client for -R. */
const CLIENT_DIALS: readonly Direction[] = ['R'];
const SERVER_DIALS: readonly Direction[] = ['L', 'D'];

type ByDirection = Record<Direction, DirectionSnapshot>;

/** The stream and byte metrics of one snapshot per scrape: `groups` gives each label set (e.g. per user) its counts. */
function trafficMetrics(registry: Registry, directions: readonly Direction[], groups: () => Array<{ labels: Record<string, string>; counts: ByDirection }>): void {
  // Each metric reads its own snapshot: a few sums over the open connections, cheap beside the rendering.
  const each = (sample: (labels: Record<string, string>, counts: DirectionSnapshot) => Sample[]): Sample[] =>
    groups().flatMap(({ labels, counts }) => directions.flatMap((direction) => sample({ direction, ...labels }, counts[direction])));
  register(registry, {
    name: `${PREFIX}streams_open`,
    help: 'Forwarded connections open now, by forward kind (direction: L, R, D, W).',
    type: 'gauge',
    read: () => each((labels, counts) => [{ labels, value: counts.connections }]),
  });
  register(registry, {
    name: `${PREFIX}streams_total`,
    help: 'Forwarded connections that ended, by how: ok (both FINs), refused (policy or a limit), dial_failed (target or server unreachable), reset.',
    type: 'counter',
    read: () => each((labels, counts) => STREAM_RESULTS.map((result) => ({ labels: { ...labels, result }, value: counts.results[result] }))),
  });
  register(registry, {
    name: `${PREFIX}forward_bytes_total`,
    help: 'Application bytes of forwarded connections: flow="out" read from local sockets into the tunnel, flow="in" from the tunnel to local sockets.',
    type: 'counter',
    read: () =>
      each((labels, counts) => [
        { labels: { ...labels, flow: 'in' }, value: counts.bytesIn },
        { labels: { ...labels, flow: 'out' }, value: counts.bytesOut },
      ]),
  });
}

function dialMetric(registry: Registry, directions: readonly Direction[], read: () => Record<Direction, DialTimesSnapshot>): void {
  const name = `${PREFIX}dial_duration_seconds`;
  register(registry, {
    name,
    help: 'Time to connect to a forward\'s target, on the side that dials it (serve for L and D, connect for R).',
    type: 'histogram',
    read: () => {
      const all = read();
      return directions.flatMap((direction) => histogramSamples(name, { direction }, DIAL_BUCKETS_SECONDS, all[direction]));
    },
  });
}

function counter(registry: Registry, name: string, help: string, value: () => number, type: 'counter' | 'gauge' = 'counter'): void {
  register(registry, { name: `${PREFIX}${name}`, help, type, read: () => [{ labels: {}, value: value() }] });
}

function withDefaults(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** `connect --metrics`: the client's counters and its session. */
export function clientRegistry(client: TunnelClient): Registry {
  const registry = withDefaults();
  trafficMetrics(registry, DIRECTIONS, () => [{ labels: {}, counts: client.trafficStats().directions }]);
  dialMetric(registry, CLIENT_DIALS, () => client.trafficStats().dialTimes);
  counter(registry, 'connected', '1 while a session to the server is up, else 0.', () => (client.trafficStats().connected ? 1 : 0), 'gauge');
  register(registry, {
    name: `${PREFIX}session_rtt_seconds`,
    help: 'Round trip to the server as the session\'s last heartbeat measured it (absent until one answered).',
    type: 'gauge',
    read: () => {
      const rtt = client.trafficStats().rttMs;
      return rtt === null ? [] : [{ labels: {}, value: rtt / 1000 }];
    },
  });
  counter(registry, 'reconnects_total', 'Links to the server made after the first, resumed or not.', () => client.trafficStats().reconnects);
  counter(registry, 'resumes_total', 'Links that resumed the session, its connections kept.', () => client.trafficStats().resumes);
  return registry;
}

/** `serve --metrics`: the server's counters, its sessions by user. */
export function serverRegistry(server: TunnelServer): Registry {
  const registry = withDefaults();
  trafficMetrics(registry, SERVER_DIRECTIONS, () => [...server.trafficStats().users].map(([user, counts]) => ({ labels: { user }, counts })));
  dialMetric(registry, SERVER_DIALS, () => server.trafficStats().dialTimes);
  register(registry, {
    name: `${PREFIX}sessions`,
    help: 'Client sessions by user: active, or detached (the link dropped; kept for a resume).',
    type: 'gauge',
    read: () => {
      const counts = new Map<string, { active: number; detached: number }>();
      for (const session of server.sessions()) {
        const entry = counts.get(session.user) ?? { active: 0, detached: 0 };
        entry[session.detached ? 'detached' : 'active']++;
        counts.set(session.user, entry);
      }
      return [...counts].flatMap(([user, { active, detached }]) => [
        { labels: { user, state: 'active' }, value: active },
        { labels: { user, state: 'detached' }, value: detached },
      ]);
    },
  });
  register(registry, {
    name: `${PREFIX}session_rtt_seconds`,
    help: 'Round trip to clients as their sessions\' last heartbeats measured it: the highest among each user\'s active sessions.',
    type: 'gauge',
    read: () => {
      const worst = new Map<string, number>();
      for (const session of server.sessions()) {
        if (session.rttMs !== null) worst.set(session.user, Math.max(worst.get(session.user) ?? 0, session.rttMs));
      }
      return [...worst].map(([user, ms]) => ({ labels: { user }, value: ms / 1000 }));
    },
  });
  counter(registry, 'unauthenticated_connections', 'Connections in the TLS handshake or not authenticated yet.', () => server.stats().unauthenticated, 'gauge');
  counter(registry, 'auth_failures_total', 'Failed authentications: wrong tokens, and resumes with a wrong secret.', () => server.trafficStats().authFailures);
  counter(registry, 'resumes_total', 'Sessions resumed on a new link.', () => server.trafficStats().resumes);
  register(registry, {
    name: `${PREFIX}limit_refusals_total`,
    help: 'Things refused at a limit: max_sessions, max_unauthenticated, max_streams, max_remote_listeners, max_waiting (connections waiting for a client\'s link).',
    type: 'counter',
    read: () => {
      const refusals = server.trafficStats().limitRefusals;
      return LIMIT_NAMES.map((limit) => ({ labels: { limit }, value: refusals[limit] }));
    },
  });
  return registry;
}
