/**
 * What a running tunnel has done, as plain numbers: forwarded connections
 * open and ended (by how they ended), their bytes, dial times, and a few
 * session events. The tunnel layer keeps them whether or not anyone looks;
 * `/metrics` (src/metrics) and `muxtun status` read them when asked.
 *
 * The data path pays one addition per chunk and nothing else: bridge() adds
 * a chunk's length to the connection's ByteMeter, and a ResumableConn keeps
 * its byte counts anyway. Open connections sit in a Set per counter and are
 * summed when someone reads (a scrape, a status); an ended one adds its
 * final counts to the counter's closed totals. So a long transfer shows its
 * bytes while it runs, and nothing is flushed on a timer.
 *
 * "Bytes" are application bytes of forwarded connections: what the local
 * socket of a forward gave (out: into the tunnel) and was given (in: from
 * the tunnel). Not stream headers, dial replies, SOCKS handshakes, TLS or
 * muxado framing, and a byte re-sent after a resume counts once.
 */
import { ErrorCode, StreamResetError } from '../muxado/index.js';

/** Which kind of forward a connection went through: -L, -R, -D, -W. The server cannot tell -W from -D (both are dynamic streams): it counts both as D. */
export type Direction = 'L' | 'R' | 'D' | 'W';
export const DIRECTIONS: readonly Direction[] = ['L', 'R', 'D', 'W'];

/**
 * How a forwarded connection ended:
 * - `ok`: carried, and both directions ended with FIN;
 * - `refused`: a policy or a limit said no (this side's, or the peer's REFUSED_STREAM);
 * - `dial_failed`: never carried: the target (or, on the client, the server) could not be reached;
 * - `reset`: carried, then reset by either end or lost with its session.
 */
export type StreamResult = 'ok' | 'refused' | 'dial_failed' | 'reset';
export const STREAM_RESULTS: readonly StreamResult[] = ['ok', 'refused', 'dial_failed', 'reset'];

/** Which limit refused something (the serve flag it comes from, or the fixed bound on connections waiting for a link). */
export type LimitName = 'max_sessions' | 'max_unauthenticated' | 'max_streams' | 'max_remote_listeners' | 'max_waiting';
export const LIMIT_NAMES: readonly LimitName[] = ['max_sessions', 'max_unauthenticated', 'max_streams', 'max_remote_listeners', 'max_waiting'];

/** One forwarded connection's byte counts so far, read live. ResumableConn has them; bridge() keeps a ByteMeter. */
export interface LiveBytes {
  /** Bytes read from the local socket (into the tunnel). */
  readonly sentBytes: number;
  /** Bytes written to the local socket (from the tunnel). */
  readonly receivedBytes: number;
}

/** bridge()'s counts for one connection: two numbers the data handlers add to. */
export class ByteMeter implements LiveBytes {
  sentBytes = 0;
  receivedBytes = 0;
}

/** A group of forwarded connections as `status` shows it. */
export interface TrafficSnapshot {
  /** Open now. */
  connections: number;
  /** Carried since the counter began (open or ended; refusals and failed dials are not). */
  connectionsTotal: number;
  /** Bytes from the tunnel to the local sockets. */
  bytesIn: number;
  /** Bytes from the local sockets into the tunnel. */
  bytesOut: number;
}

/** A traffic snapshot with the ended connections by result. */
export interface DirectionSnapshot extends TrafficSnapshot {
  results: Record<StreamResult, number>;
}

/** The counts of one group of forwarded connections: a direction, a user's direction, a forward. */
export class TrafficCounter {
  readonly #open = new Set<LiveBytes>();
  #total = 0;
  #closedIn = 0;
  #closedOut = 0;
  readonly #results: Record<StreamResult, number> = { ok: 0, refused: 0, dial_failed: 0, reset: 0 };

  opened(conn: LiveBytes): void {
    this.#open.add(conn);
    this.#total++;
  }

  ended(conn: LiveBytes, result: StreamResult): void {
    if (!this.#open.delete(conn)) return;
    this.#closedIn += conn.receivedBytes;
    this.#closedOut += conn.sentBytes;
    this.#results[result]++;
  }

  /** A connection that was never carried (refused, dial failed). */
  notCarried(result: StreamResult): void {
    this.#results[result]++;
  }

  snapshot(): DirectionSnapshot {
    let bytesIn = this.#closedIn;
    let bytesOut = this.#closedOut;
    for (const conn of this.#open) {
      bytesIn += conn.receivedBytes;
      bytesOut += conn.sentBytes;
    }
    return { connections: this.#open.size, connectionsTotal: this.#total, bytesIn, bytesOut, results: { ...this.#results } };
  }
}

/** Every counter one connection counts in (its direction's total, its forward's, its session's). */
export type TrafficRoute = readonly TrafficCounter[];

export function connOpened(route: TrafficRoute, conn: LiveBytes): void {
  for (const counter of route) counter.opened(conn);
}

export function connEnded(route: TrafficRoute, conn: LiveBytes, result: StreamResult): void {
  for (const counter of route) counter.ended(conn, result);
}

export function connNotCarried(route: TrafficRoute, result: StreamResult): void {
  for (const counter of route) counter.notCarried(result);
}

/** How a carried connection ended, from the error it ended with (none: both FINs). */
export function endResult(error: Error | undefined): StreamResult {
  if (error === undefined) return 'ok';
  if (error instanceof StreamResetError && error.remote && error.errorCode === ErrorCode.REFUSED_STREAM) return 'refused';
  return 'reset';
}

export type DirectionCounters = Record<Direction, TrafficCounter>;

export function directionCounters(): DirectionCounters {
  return { L: new TrafficCounter(), R: new TrafficCounter(), D: new TrafficCounter(), W: new TrafficCounter() };
}

export function snapshotDirections(counters: DirectionCounters): Record<Direction, DirectionSnapshot> {
  return { L: counters.L.snapshot(), R: counters.R.snapshot(), D: counters.D.snapshot(), W: counters.W.snapshot() };
}

/** Upper bounds of the dial time buckets, in seconds (Prometheus' `le`). */
export const DIAL_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Dial times in fixed buckets: a bounded histogram of our own, so the tunnel layer needs no metrics library. */
export interface DialTimesSnapshot {
  /** Cumulative counts per bound of DIAL_BUCKETS_SECONDS (dials that took at most that long). */
  buckets: number[];
  count: number;
  sumSeconds: number;
}

export class DialTimes {
  readonly #counts = new Array<number>(DIAL_BUCKETS_SECONDS.length).fill(0);
  #count = 0;
  #sum = 0;

  observe(ms: number): void {
    const seconds = ms / 1000;
    this.#count++;
    this.#sum += seconds;
    const index = DIAL_BUCKETS_SECONDS.findIndex((bound) => seconds <= bound);
    if (index >= 0) this.#counts[index]!++;
  }

  snapshot(): DialTimesSnapshot {
    let running = 0;
    return { buckets: this.#counts.map((n) => (running += n)), count: this.#count, sumSeconds: this.#sum };
  }
}

export type DirectionDialTimes = Record<Direction, DialTimes>;

export function directionDialTimes(): DirectionDialTimes {
  return { L: new DialTimes(), R: new DialTimes(), D: new DialTimes(), W: new DialTimes() };
}

/** What a client has done: see TunnelClient.trafficStats(). */
export interface ClientStatsSnapshot {
  /** A session is up now. */
  connected: boolean;
  /** The session's round trip as its last heartbeat measured it, in ms; null while none is up or none answered yet. */
  rttMs: number | null;
  /** Links made after the first, resumed or not. */
  reconnects: number;
  /** Of those, the ones that resumed the session (its connections kept). */
  resumes: number;
  directions: Record<Direction, DirectionSnapshot>;
  /** Dial times of the targets this side dials (-R). */
  dialTimes: Record<Direction, DialTimesSnapshot>;
}

/** What a server has done: see TunnelServer.trafficStats(). Sessions, their users and RTTs are in `sessions()`. */
export interface ServerStatsSnapshot {
  /** Wrong tokens and wrong resume secrets. */
  authFailures: number;
  /** Sessions resumed on a new link. */
  resumes: number;
  limitRefusals: Record<LimitName, number>;
  /** By user (bounded by the users file; `default` with a single token): -W counts as D. */
  users: Map<string, Record<Direction, DirectionSnapshot>>;
  /** Dial times of the targets this side dials (-L, -D/-W). */
  dialTimes: Record<Direction, DialTimesSnapshot>;
}

/** The server's counters that outlive sessions: by user, for Prometheus counters that never go down. */
export class ServerStats {
  readonly #users = new Map<string, DirectionCounters>();
  readonly dialTimes = directionDialTimes();
  readonly limitRefusals: Record<LimitName, number> = { max_sessions: 0, max_unauthenticated: 0, max_streams: 0, max_remote_listeners: 0, max_waiting: 0 };
  authFailures = 0;
  resumes = 0;

  user(name: string): DirectionCounters {
    let counters = this.#users.get(name);
    if (!counters) {
      counters = directionCounters();
      this.#users.set(name, counters);
    }
    return counters;
  }

  snapshot(): ServerStatsSnapshot {
    const users = new Map<string, Record<Direction, DirectionSnapshot>>();
    for (const [name, counters] of this.#users) users.set(name, snapshotDirections(counters));
    const dial = this.dialTimes;
    return {
      authFailures: this.authFailures,
      resumes: this.resumes,
      limitRefusals: { ...this.limitRefusals },
      users,
      dialTimes: { L: dial.L.snapshot(), R: dial.R.snapshot(), D: dial.D.snapshot(), W: dial.W.snapshot() },
    };
  }
}

/** The client's counters: by direction, and by forward id for `status`. */
export class ClientStats {
  readonly directions = directionCounters();
  readonly dialTimes = directionDialTimes();
  reconnects = 0;
  resumes = 0;
  readonly #forwards = new Map<number, { counter: TrafficCounter; route: TrafficRoute }>();
  readonly #stdio: TrafficRoute = [this.directions.W];

  /** Where a connection of forward `id` counts: its direction and the forward. */
  forwardRoute(direction: Exclude<Direction, 'W'>, id: number): TrafficRoute {
    let entry = this.#forwards.get(id);
    if (!entry) {
      const counter = new TrafficCounter();
      entry = { counter, route: [this.directions[direction], counter] };
      this.#forwards.set(id, entry);
    }
    return entry.route;
  }

  /** -W's one connection: no forward of its own. */
  get stdioRoute(): TrafficRoute {
    return this.#stdio;
  }

  /** A forward was removed: its counter goes (its open connections still count in their direction). */
  forgetForward(id: number): void {
    this.#forwards.delete(id);
  }

  forwardSnapshot(id: number): TrafficSnapshot {
    const { connections, connectionsTotal, bytesIn, bytesOut } = this.#forwards.get(id)?.counter.snapshot() ?? { connections: 0, connectionsTotal: 0, bytesIn: 0, bytesOut: 0 };
    return { connections, connectionsTotal, bytesIn, bytesOut };
  }
}

/** One session's counters on the server, for `sessions()`: by direction, and per -R forward id. */
export class SessionTraffic {
  readonly directions = directionCounters();
  readonly #remote = new Map<number, { counter: TrafficCounter; route: TrafficRoute }>();
  readonly #user: DirectionCounters;
  readonly #routes: Record<'L' | 'D', TrafficRoute>;

  constructor(user: DirectionCounters) {
    this.#user = user;
    this.#routes = { L: [user.L, this.directions.L], D: [user.D, this.directions.D] };
  }

  /** -L or dynamic (-D, -W) streams of this session. */
  route(direction: 'L' | 'D'): TrafficRoute {
    return this.#routes[direction];
  }

  /** Connections to this session's -R listener `id`. */
  remoteRoute(id: number): TrafficRoute {
    let entry = this.#remote.get(id);
    if (!entry) {
      const counter = new TrafficCounter();
      entry = { counter, route: [this.#user.R, this.directions.R, counter] };
      this.#remote.set(id, entry);
    }
    return entry.route;
  }

  remoteSnapshot(id: number): TrafficSnapshot {
    const { connections, connectionsTotal, bytesIn, bytesOut } = this.#remote.get(id)?.counter.snapshot() ?? { connections: 0, connectionsTotal: 0, bytesIn: 0, bytesOut: 0 };
    return { connections, connectionsTotal, bytesIn, bytesOut };
  }
}
