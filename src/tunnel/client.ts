import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { MuxtunError } from '../errors.js';
import { ErrorCode, type Session, type SessionEnd } from '../muxado/index.js';
import { describeError, errnoCode } from '../util/errors.js';
import { Backoff } from './backoff.js';
import { clientHandshake, type ClientSession } from './client-handshake.js';
import { checkForwardSpec, resolveClientOptions, settingsNeedingRestart, type ResolvedClientOptions, type TunnelClientOptions } from './client-options.js';
import { dialThroughServer, serveSocksConnection, type DynamicDeps, type DynamicSpec } from './client-dynamic.js';
import { ClientForwards, type ForwardInfo, type ForwardKind, type ForwardSpecOf } from './client-forwards.js';
import { ClientResumption } from './client-resume.js';
import { forwardLocalConnection, serveRemoteStream } from './client-streams.js';
import type { ServerMessage } from './control-messages.js';
import { waitForDrain } from './drain.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeForward, type ForwardSpec } from './forward.js';
import { LocalListeners } from './local-listeners.js';
import type { TunnelLogger } from './logger.js';
import { requestRemoteForwards, type RemoteForwardResult } from './remote-forwards.js';
import { SessionSlot } from './session-slot.js';
import type { LocalListener } from './local-listeners.js';
import { ClientStats, snapshotDirections, type ClientStatsSnapshot, type TrafficRoute, type TrafficSnapshot } from './tunnel-stats.js';

export interface TunnelClientEvents {
  /** A session is up and every -R request was answered (`remote` holds the ports the server bound). */
  ready: [info: { sessionId: string; remote: Array<{ spec: ForwardSpec; port: number }>; reconnect: boolean }];
}

/** What adding one forward came to: the forward as listed, or why it could not be set up (nothing was kept then). */
export type ForwardAddResult =
  | { ok: true; forward: ForwardInfo }
  | { ok: false; kind: ForwardKind; spec: ForwardSpec | DynamicSpec; code: string; message: string };

/** What {@link TunnelClient.reconfigure} changed, and what it could not. */
export interface ClientReconfigureReport {
  /** Forwards new in the options: started (a -R is `pending` when not connected: asked for at the next session), or failed. */
  added: ForwardAddResult[];
  /** Forwards no longer in the options: stopped (their open connections go on). */
  removed: ForwardInfo[];
  /** Forwards in both: left as they were. */
  unchanged: number;
  /** Whether allowTarget changed (it applies to the next reverse dynamic connection). */
  allowTargetChanged: boolean;
  /** Settings that differ but only apply on a new connection (TunnelClientOptions field names): left as they were. */
  restartNeeded: string[];
}

const FLAGS: Readonly<Record<ForwardKind, '-L' | '-R' | '-D'>> = { local: '-L', remote: '-R', dynamic: '-D' };

/** `-L 127.0.0.1:8080 -> db:5432`, `-D 127.0.0.1:1080`. */
function describeAny(kind: ForwardKind, spec: ForwardSpec | DynamicSpec): string {
  return kind === 'dynamic' ? `-D ${spec.bindHost}:${spec.bindPort}` : describeForward(FLAGS[kind] as '-L' | '-R', spec as ForwardSpec);
}

// Errors that a retry cannot fix: the user must act.
const FATAL_CODES = new Set<string>([
  TunnelErrorCode.AUTH,
  TunnelErrorCode.VERSION,
  TunnelErrorCode.NO_FORWARDS,
  TunnelErrorCode.FORWARD_FAILED,
  TunnelErrorCode.ACCESS_REVOKED,
  TunnelErrorCode.SESSION_CLOSED,
  'ERR_MUXTUN_INVALID_ARGUMENT',
  'ERR_MUXTUN_HOST_KEY_CHANGED',
  'ERR_MUXTUN_FINGERPRINT_MISMATCH',
  'ERR_MUXTUN_TLS_UNTRUSTED',
  'ERR_MUXTUN_TLS_CONFIG',
  'ERR_MUXTUN_BAD_FINGERPRINT',
  'ERR_MUXTUN_KNOWN_HOSTS_READ',
  'ERR_MUXTUN_KNOWN_HOSTS_INVALID',
  'ERR_MUXTUN_KNOWN_HOSTS_WRITE',
  // The proxy wants other credentials: retrying with the same ones cannot help.
  'ERR_MUXTUN_PROXY_AUTH',
]);

// Before the first session: a server that is not a muxtun server (or not
// TLS) will not become one by waiting. Once one worked, the same errors
// mean it is restarting, and are retried.
const FATAL_BEFORE_FIRST_SESSION = new Set<string>([TunnelErrorCode.HANDSHAKE, 'ERR_MUXTUN_TLS_HANDSHAKE']);

const seconds = (ms: number): string => (ms / 1000).toFixed(1);
/** How long past the server's grace the client keeps trying before it drops the old connections itself. */
const GIVE_UP_AFTER_GRACE_MS = 10_000;
const connections = (n: number): string => `${n} connection${n === 1 ? '' : 's'}`;
const formatBytes = (bytes: number): string =>
  bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Whether waiting and trying again could help. */
function isTransient(error: unknown, everConnected: boolean): boolean {
  const code = errnoCode(error) ?? '';
  if (FATAL_CODES.has(code)) return false;
  if (!everConnected && FATAL_BEFORE_FIRST_SESSION.has(code)) return false;
  // A name that does not exist is a typo; one that does not resolve *now* (EAI_AGAIN) is the network.
  if (code === 'ERR_MUXTUN_CONNECT' && errnoCode((error as Error).cause) === 'ENOTFOUND' && !everConnected) return false;
  return true;
}

/**
 * `muxtun connect`: -L listeners here, -R listeners on the server, one
 * session at a time, reconnecting with backoff. Orchestrates the parts:
 * LocalListeners, clientHandshake, requestRemoteForwards, SessionSlot,
 * and the stream handlers in client-streams.ts.
 */
export class TunnelClient extends EventEmitter<TunnelClientEvents> {
  /** Random per process, kept across reconnects: lets the server replace a stale session. */
  readonly clientId = randomUUID();
  /** The settings in force: those of the constructor (a reconfigure changes only the forwards and allowTarget). */
  readonly #options: ResolvedClientOptions;
  readonly #logger: TunnelLogger;
  readonly #backoff: Backoff;
  /** Every forward by id, with the -L and -D listeners. */
  readonly #forwards: ClientForwards;
  readonly #dynamic: DynamicDeps;
  readonly #slot = new SessionSlot();
  /** The authenticated session, from the handshake until it ends (-R changes go out on it; #current waits for the -R answers). */
  #link: ClientSession | null = null;
  /** Reconfigures run one at a time, in the order asked. */
  #reconfiguring: Promise<unknown> = Promise.resolve();
  #stopping = false;
  #wake: (() => void) | null = null;
  #stopped: Promise<void> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  /** The session that is up, with its control stream. */
  #current: ClientSession | null = null;
  /** The resumable tunnel session and its connections, across links; null when the session does not resume. */
  #resumption: ClientResumption | null = null;
  /** The server ended this client for good (a session-wide ERR_MUXTUN_ACCESS_REVOKED or ERR_MUXTUN_SESSION_CLOSED): run() ends with it. */
  #revoked: TunnelError | null = null;
  /** The tunnel session now held (kept across resumes), for {@link TunnelClient.session}. */
  #session: { id: string; since: Date; resumes: number } | null = null;
  /** Counters for trafficStats() and forwardStats(). */
  readonly #stats = new ClientStats();
  /** Each -L and -D listener's route, found once (by forward id) at its first connection. */
  readonly #routes = new WeakMap<LocalListener<ForwardSpec | DynamicSpec>, TrafficRoute>();

  /** @throws InvalidArgumentError (`ERR_MUXTUN_INVALID_ARGUMENT`) naming a bad option. */
  constructor(options: TunnelClientOptions) {
    super();
    this.#options = resolveClientOptions(options);
    this.#logger = this.#options.logger;
    this.#backoff = new Backoff({ baseMs: this.#options.timings.backoffBaseMs, capMs: this.#options.timings.backoffCapMs });
    this.#dynamic = { slot: this.#slot, table: () => this.#resumption?.table ?? null, logger: this.#logger, timings: this.#options.timings, counters: { socksRefused: 0 } };
    const local = new LocalListeners<ForwardSpec>(this.#logger, (listener, socket) => this.#onLocalConnection(listener, socket), (spec) => describeForward('-L', spec));
    const socks = new LocalListeners<DynamicSpec>(
      this.#logger,
      (listener, socket) => {
        if (this.#stopping) socket.resetAndDestroy();
        else void serveSocksConnection(listener, socket, this.#dynamic, this.#routeOf('D', listener));
      },
      (spec) => `-D ${spec.bindHost}:${spec.bindPort}`,
    );
    this.#forwards = new ClientForwards({ local, socks }, this.#options);
  }

  /**
   * Each forward's connections (open now, carried in all) and bytes (in:
   * from the tunnel to the local sockets; out: the other way), by forward
   * id, for every forward held now. Counted from when the forward was added;
   * application bytes only (see tunnel-stats.ts). Cheap: no I/O.
   */
  forwardStats(): Map<number, TrafficSnapshot> {
    return new Map(this.#forwards.list().map((forward) => [forward.id, this.#stats.forwardSnapshot(forward.id)]));
  }

  /** Counters since start for monitoring (`/metrics`): by direction and result, dial times, reconnects, and the session's RTT. */
  trafficStats(): ClientStatsSnapshot {
    const stats = this.#stats;
    const session = this.#slot.current;
    const rtt = session?.rtt ?? -1;
    const dial = stats.dialTimes;
    return {
      connected: session !== null,
      rttMs: rtt >= 0 ? rtt : null,
      reconnects: stats.reconnects,
      resumes: stats.resumes,
      directions: snapshotDirections(stats.directions),
      dialTimes: { L: dial.L.snapshot(), R: dial.R.snapshot(), D: dial.D.snapshot(), W: dial.W.snapshot() },
    };
  }

  /** Where connections of a -L or -D listener count: found by the listener's address (the object the forwards list holds). */
  #routeOf(direction: 'L' | 'D', listener: LocalListener<ForwardSpec | DynamicSpec>): TrafficRoute {
    let route = this.#routes.get(listener);
    if (route === undefined) {
      const forward = this.#forwards.list().find((f) => f.kind !== 'remote' && f.address === listener.address);
      // A listener no longer listed (removed as it accepted) counts in its direction only.
      route = forward ? this.#stats.forwardRoute(direction, forward.id) : [this.#stats.directions[direction]];
      this.#routes.set(listener, route);
    }
    return route;
  }

  /** Addresses of the -D (SOCKS) listeners, in the order given. */
  get socksAddresses(): net.AddressInfo[] {
    return this.#forwards.socksListeners.all.map((l) => l.address);
  }

  /** Every forward with its id (stable for the client's life, never reused): -L, then -R, then -D. */
  forwards(): ForwardInfo[] {
    return this.#forwards.list();
  }

  /**
   * Starts one forward while running. A -L or -D is bound here; a -R is
   * asked of the server on the session that is up (and resolves with the
   * port it got), or at the next session when none is (state `pending`).
   * @throws InvalidArgumentError for a malformed spec; ERR_MUXTUN_BIND when
   *   a -L or -D cannot listen; the server's code (ERR_MUXTUN_POLICY,
   *   ERR_MUXTUN_BIND, ERR_MUXTUN_LIMIT...) when it refuses a -R. Nothing
   *   is kept when it throws. {@link reconfigure} leaves forwards added here
   *   alone unless its options name them.
   */
  async addForward<K extends ForwardKind>(kind: K, spec: ForwardSpecOf<K>): Promise<ForwardInfo> {
    checkForwardSpec(kind, spec);
    if (this.#stopping) throw new TunnelError(TunnelErrorCode.SESSION_LOST, 'connect is stopping');
    const result = await this.#add(kind, spec, true);
    if (!result.ok) throw new MuxtunError(result.code, result.message);
    return result.forward;
  }

  /**
   * Stops one forward: a -L or -D listener closes; a -R is withdrawn on
   * the server (at once, or after the resume when the link is down). Open
   * connections through it go on until they end. Undefined for an unknown id.
   */
  removeForward(id: number): ForwardInfo | undefined {
    const removed = this.#forwards.remove(id);
    if (!removed) return undefined;
    this.#stats.forgetForward(id);
    const { forward, unlisten } = removed;
    // The server's listener may be up (or binding): withdraw it. Without a link, the resume says it again.
    if (unlisten) this.#link?.control.send({ type: 'unlisten', id });
    this.#logger.info({ forward: describeAny(forward.kind, forward.kind === 'remote' && forward.port !== null ? { ...forward.spec, bindPort: forward.port } : forward.spec), id }, `${FLAGS[forward.kind]} removed`);
    return forward;
  }

  /**
   * Applies a changed configuration without a reconnect: forwards compared
   * by their spec, those gone stopped (their connections go on), new ones
   * started, the rest untouched; `allowTarget` applies from the next
   * connection. Settings that need a new connection are listed in
   * `restartNeeded` (not logged: the caller says it its way) and left as
   * they are. A forward that cannot be set up is in the report (and
   * logged); the others still apply.
   * @throws InvalidArgumentError (`ERR_MUXTUN_INVALID_ARGUMENT`) naming a bad option; then nothing changed.
   */
  reconfigure(options: TunnelClientOptions): Promise<ClientReconfigureReport> {
    let next: ResolvedClientOptions;
    try {
      next = resolveClientOptions(options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const run = this.#reconfiguring.then(() => this.#reconfigure(next));
    this.#reconfiguring = run.catch(() => undefined);
    return run;
  }

  async #reconfigure(next: ResolvedClientOptions): Promise<ClientReconfigureReport> {
    if (this.#stopping) throw new TunnelError(TunnelErrorCode.SESSION_LOST, 'connect is stopping');
    const restartNeeded = settingsNeedingRestart(this.#options, next);
    const allowTargetChanged = JSON.stringify(this.#forwards.allowTarget) !== JSON.stringify(next.allowTarget);
    if (allowTargetChanged) {
      this.#forwards.allowTarget = next.allowTarget;
      this.#logger.info({ allowTarget: next.allowTarget.length }, 'allow-target changed: applies to new reverse dynamic connections');
    }
    const { remove, add, unchanged } = this.#forwards.diff(next);
    // Removed first: a forward moved to another target keeps its port.
    const removed = remove.map((id) => this.removeForward(id)).filter((f): f is ForwardInfo => f !== undefined);
    const added = await Promise.all(add.map(({ kind, spec }) => this.#add(kind, spec)));
    return { added, removed, unchanged, allowTargetChanged, restartNeeded };
  }

  /** Starts one forward (logged); a failure is the result, with nothing kept. */
  async #add(kind: ForwardKind, spec: ForwardSpec | DynamicSpec, runtime = false): Promise<ForwardAddResult> {
    const failed = (code: string, message: string): ForwardAddResult => {
      this.#logger.error({ forward: describeAny(kind, spec), code }, `${FLAGS[kind]} not added: ${message}`);
      return { ok: false, kind, spec, code, message };
    };
    if (kind !== 'remote') {
      let forward: ForwardInfo;
      try {
        forward = await this.#forwards.addBound(kind, spec);
        if (runtime) this.#forwards.markRuntime(forward.id);
      } catch (error) {
        return failed(errnoCode(error) ?? TunnelErrorCode.BIND, describeError(error));
      }
      // As -L and -D are logged at start: the port it got, and for -D the address.
      const address = forward.kind === 'remote' ? null : forward.address;
      const bound = address === null ? spec : { ...spec, bindPort: address.port, ...(kind === 'dynamic' ? { bindHost: address.address } : {}) };
      this.#logger.info({ forward: describeAny(kind, bound), id: forward.id }, `${FLAGS[kind]} added`);
      return { ok: true, forward };
    }
    const remote = spec as ForwardSpec;
    const id = this.#forwards.addRemote(remote);
    if (runtime) this.#forwards.markRuntime(id);
    const link = this.#link;
    if (!link) {
      this.#logger.info({ forward: describeForward('-R', remote), id }, '-R added; asked of the server once connected');
      return { ok: true, forward: this.#forwards.info(id)! };
    }
    this.#forwards.markRequested(id);
    const [result] = await this.#requestRemote(link, [{ id, spec: remote }]);
    if (result && !result.ok && !result.withdrawn && result.code !== TunnelErrorCode.SESSION_LOST) {
      // Refused: the caller hears why, and nothing stays (a later reload asks again).
      this.#forwards.remove(id);
      return failed(result.code, result.message);
    }
    const forward = this.#forwards.info(id);
    if (!forward) return failed(TunnelErrorCode.FORWARD_FAILED, 'removed before the server answered');
    if (result?.ok) this.#logger.info({ forward: describeForward('-R', { ...remote, bindPort: result.port }), id }, '-R added: listening on the server');
    else this.#logger.info({ forward: describeForward('-R', remote), id }, '-R added; the link dropped before the server answered: asked again at the next session');
    return { ok: true, forward };
  }

  /** Asks the server on `link` for these -R forwards and records its answers. */
  async #requestRemote(link: ClientSession, forwards: Array<{ id: number; spec: ForwardSpec }>): Promise<RemoteForwardResult[]> {
    const results = await requestRemoteForwards(
      link.session,
      link.control,
      forwards,
      this.#forwards.grantedPorts,
      (spec, lost) => this.#logger.warn({ forward: describeForward('-R', spec), port: lost }, 'the port this forward had before is taken now; asking for any free port'),
      this.#forwards,
    );
    this.#forwards.record(results);
    return results;
  }

  /**
   * One connection through the server to host:port, for `connect -W`:
   * waits for a session, has the server dial, then carries `socket` (a
   * resumable conn when the session resumes). Resolves once the server's
   * dial succeeded; rejects with ERR_MUXTUN_DIAL (or ERR_MUXTUN_POLICY)
   * saying why it did not. The socket must allow half-open.
   */
  async dial(host: string, port: number, socket: net.Socket): Promise<void> {
    const outcome = await dialThroughServer(socket, { host, port }, this.#dynamic, { forward: '-W', peer: 'stdio', target: `${host}:${port}` }, this.#stats.stdioRoute);
    if (!outcome.ok) throw new TunnelError(outcome.failure === 'policy' ? TunnelErrorCode.POLICY : TunnelErrorCode.DIAL, outcome.message);
  }

  /** Counts for monitoring and tests: whether a session is up, its open forward streams, -L listeners. */
  stats(): { connected: boolean; streams: number; localListeners: number; conns: number; replayBytes: number } {
    const session = this.#slot.current;
    const table = this.#resumption?.table;
    return {
      connected: session !== null,
      streams: session ? Math.max(0, session.openStreams - 1) : 0,
      localListeners: this.#forwards.localListeners.all.length,
      conns: table?.size ?? 0,
      replayBytes: table?.replayBytes ?? 0,
    };
  }

  /**
   * The tunnel session while a link is up: the server's id for it, when it
   * began (a resume keeps it), the round-trip time the last heartbeat
   * measured and the smallest so far (null before the first) and how often
   * it resumed. Null while connecting or reconnecting.
   */
  session(): { id: string; since: Date; rttMs: number | null; minRttMs: number | null; resumes: number } | null {
    const link = this.#slot.current;
    if (link === null || this.#session === null) return null;
    return { ...this.#session, rttMs: link.rtt >= 0 ? link.rtt : null, minRttMs: link.minRtt >= 0 ? link.minRtt : null };
  }

  /** Addresses of the -L listeners, in the order given. */
  get localAddresses(): net.AddressInfo[] {
    return this.#forwards.localListeners.all.map((l) => l.address);
  }

  /**
   * Binds the -L listeners, connects, and keeps the tunnel up until
   * `stop()`. Resolves after a clean stop; rejects with the reason the
   * tunnel cannot go on (bad token, untrusted server, a forward that cannot
   * be set up at start, a lost session without reconnect), so the caller
   * can print it and exit.
   */
  async run(): Promise<void> {
    try {
      // Bound before connecting: a port in use is fatal at once, naming the forward.
      await this.#forwards.bindAll((kind, address, spec) => {
        if (kind === 'local') this.#logger.debug({ forward: describeForward('-L', { ...(spec as ForwardSpec), bindPort: address.port }) }, '-L bound; connecting to the server');
        else this.#logger.info({ forward: `-D ${address.address}:${address.port}` }, '-D SOCKS listening');
      });
      let everConnected = false;
      while (!this.#stopping) {
        let end: SessionEnd | null = null;
        try {
          end = await this.#runSession(everConnected);
          everConnected = true;
        } catch (error) {
          if (this.#stopping) break;
          if (this.#revoked) throw this.#revoked;
          if (errnoCode(error) === TunnelErrorCode.RESUME_REFUSED && this.#resumption) {
            // The server no longer has the session: its connections are gone; start afresh at once.
            this.#giveUpResume('resume refused', (error as Error).message.replace(/^the server refused the connection: /, ''));
            continue;
          }
          if (!this.#options.reconnect || !isTransient(error, everConnected)) throw error;
          const resumption = this.#resumption;
          // Unreachable for longer than the server keeps the session (and some): no point holding the connections.
          // A reachable server says so itself ("expired"), which is why this waits a little longer than the grace.
          if (resumption?.lostAt != null && performance.now() - resumption.lostAt > resumption.ticket.graceMs + GIVE_UP_AFTER_GRACE_MS) {
            this.#giveUpResume('resume given up', `the server was unreachable for longer than the ${resumption.ticket.graceMs / 1000} s it keeps a session`);
          }
          const delay = this.#backoff.next();
          this.#logger.warn(
            { attempt: this.#backoff.attempt, error: describeError(error), delayMs: delay },
            `${everConnected ? 'reconnect attempt failed' : 'cannot reach the server'}; next attempt in ${seconds(delay)} s`,
          );
          await this.#sleep(delay);
          continue;
        }
        if (this.#stopping) break;
        // Revoked or closed by the operator: not a lost link to resume or a session to start again; the user must act.
        if (this.#revoked) throw this.#revoked;
        const reason = end.error ? end.error.message : 'the server closed the session';
        const resumption = this.#resumption;
        if (resumption && end.error !== undefined && this.#options.reconnect) {
          resumption.detach();
          const held = resumption.table.size;
          this.#logger.warn({ reason, connections: held }, `link lost (${reason}); resuming ${connections(held)}`);
        } else if (resumption) {
          // The server ended the session on purpose (shutting down, replaced): nothing to resume.
          this.#resumption = null;
          resumption.abort(`the server closed the session: ${reason}`);
        }
        if (!this.#options.reconnect) throw new TunnelError(TunnelErrorCode.SESSION_LOST, `lost the session to the server: ${reason}`);
        const delay = this.#backoff.next();
        if (this.#resumption === null) this.#logger.warn({ reason }, 'session to the server lost');
        this.#logger.info({ attempt: this.#backoff.attempt, delayMs: delay }, `reconnecting in ${seconds(delay)} s`);
        await this.#sleep(delay);
      }
    } finally {
      this.#forwards.closeAll();
      this.#slot.close();
      if (this.#retryTimer) clearTimeout(this.#retryTimer);
      this.#resumption?.abort('connect stopped');
      this.#resumption = null;
    }
  }

  /** The old session's connections cannot come back: reset them and start afresh. */
  #giveUpResume(what: string, reason: string): void {
    const resumption = this.#resumption;
    if (!resumption) return;
    this.#resumption = null;
    this.#logger.warn({ reason, connections: resumption.table.size }, `${what} (${reason}): ${connections(resumption.table.size)} lost`);
    resumption.abort(`${what} (${reason})`);
  }

  /**
   * Graceful stop: stop accepting at once, send GOAWAY, give open
   * connections up to `drainMs` to finish, then end the rest (their
   * local sockets are reset) and close the session.
   */
  stop(drainMs = 5_000): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      this.#wake?.();
      this.#forwards.closeAll();
      const current = this.#current;
      const session = this.#slot.current;
      this.#slot.close();
      if (session && current) {
        session.goAway(ErrorCode.NO_ERROR, 'client shutting down');
        await waitForDrain([{ session, keep: [current.control.stream] }], drainMs);
        // What did not finish in time is reset, not kept for a resume that will not come.
        this.#resumption?.abort('connect stopped');
        this.#resumption = null;
        session.close();
        await session.closed;
      }
    })();
    return this.#stopped;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    }).finally(() => {
      this.#wake = null;
    });
  }

  /** Connects, authenticates, sets up -R; resolves when that session ends. Throws if it never came up. */
  async #runSession(isReconnect: boolean): Promise<SessionEnd> {
    const resuming = this.#resumption;
    const connected = await clientHandshake(
      this.#options,
      this.clientId,
      resuming ? { resumeSession: { sessionId: resuming.ticket.sessionId, secret: resuming.ticket.secret }, states: resuming.table.resumeMessages().map((m) => ({ type: 'resume-state' as const, ...m })) } : undefined,
    );
    const { session, control, sessionId } = connected;
    if (this.#stopping) {
      session.close();
      return session.closed;
    }
    this.#afterTrust(connected);
    this.#backoff.reset();
    this.#link = connected;
    try {
      return resuming && connected.resumed ? await this.#runResumed(resuming, connected) : await this.#runFresh(connected, isReconnect);
    } finally {
      this.#link = null;
    }
  }

  /** A new tunnel session: no -R listener of ours on the server yet. */
  async #runFresh(connected: ClientSession, isReconnect: boolean): Promise<SessionEnd> {
    const { session, control, sessionId } = connected;
    // The server ended any earlier session of this client (and its listeners) when it took this one.
    this.#forwards.freshSession();
    if (connected.resume && this.#options.resume) {
      this.#resumption = new ClientResumption({ sessionId, secret: connected.resume.secret, graceMs: connected.resume.graceMs }, this.#logger);
    }
    const resumption = this.#resumption;
    session.on('stream', (stream) =>
      void (resumption
        ? resumption.serveStream(stream, this.#forwards, this.#options.timings, this.#stats)
        : serveRemoteStream(stream, this.#forwards, this.#options.timings, this.#logger, this.#stats)),
    );
    control.on('message', (message) => this.#onServerMessage(message));
    control.on('invalid', (error) => {
      this.#logger.error({ error: error.message }, 'the server sent a bad control message; reconnecting');
      session.close();
    });
    control.release();

    const results = await this.#requestRemote(connected, this.#forwards.takeUnrequested());
    if (session.isClosed) return session.closed;
    const failed = results.filter((r): r is Extract<RemoteForwardResult, { ok: false }> => !r.ok && r.withdrawn !== true);
    for (const result of failed) this.#logger.error({ forward: describeForward('-R', result.spec), code: result.code }, result.message);
    if (!isReconnect && failed.length > 0 && !this.#options.keepGoing) {
      session.close();
      const first = failed[0]!;
      throw new TunnelError(
        TunnelErrorCode.FORWARD_FAILED,
        `${describeForward('-R', first.spec)} could not be set up: ${first.message}${failed.length > 1 ? ` (and ${failed.length - 1} more, see above)` : ''}; use --keep-going to run without it`,
      );
    }
    const ok = results.filter((r): r is Extract<RemoteForwardResult, { ok: true }> => r.ok);
    const counts = this.#forwards.counts;
    if (counts.local === 0 && counts.dynamic === 0 && ok.length === 0 && counts.remote > 0) {
      session.close();
      throw new TunnelError(TunnelErrorCode.NO_FORWARDS, 'no forward could be set up (see the errors above)');
    }
    if (isReconnect && failed.length > 0) this.#retryRemoteForwards(session, connected, failed.map((f) => ({ id: f.id, spec: f.spec })), 1_000);

    // Said once each is true: the forwards work from now on.
    if (!isReconnect) {
      for (const { spec, address } of this.#forwards.localListeners.all) {
        this.#logger.info({ forward: describeForward('-L', { ...spec, bindPort: address.port }) }, '-L listening');
      }
    }
    for (const { spec, port } of ok) this.#logger.info({ forward: describeForward('-R', { ...spec, bindPort: port }) }, '-R listening on the server');
    this.#current = connected;
    this.#session = { id: sessionId, since: new Date(), resumes: 0 };
    resumption?.attach(session, control);
    if (isReconnect) this.#stats.reconnects++;
    this.#slot.set(session);
    this.#logger.info({ sessionId, server: `${this.#options.host}:${this.#options.port}` }, isReconnect ? 'reconnected' : 'connected');
    this.emit('ready', { sessionId, remote: ok.map(({ spec, port }) => ({ spec, port })), reconnect: isReconnect });
    const end = await session.closed;
    this.#slot.set(null);
    this.#current = null;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    return end;
  }

  /** A link that resumed the session: finish the exchange, then carry on until it ends. */
  async #runResumed(resumption: ClientResumption, connected: ClientSession): Promise<SessionEnd> {
    const { session, control } = connected;
    const lostAt = resumption.lostAt ?? performance.now();
    session.on('stream', (stream) => void resumption.serveStream(stream, this.#forwards, this.#options.timings, this.#stats));
    control.on('message', (message) => this.#onServerMessage(message));
    control.on('invalid', (error) => {
      this.#logger.error({ error: error.message }, 'the server sent a bad control message; reconnecting');
      session.close();
    });
    resumption.attach(session, control);
    let kept: number;
    try {
      const exchanging = resumption.exchange(session, control, this.#options.timings.handshakeTimeoutMs);
      control.release();
      kept = await exchanging;
    } catch (error) {
      session.close();
      throw error;
    }
    this.#current = connected;
    if (this.#session !== null) this.#session.resumes++;
    this.#stats.reconnects++;
    this.#stats.resumes++;
    this.#slot.set(session);
    const afterMs = Math.round(performance.now() - lostAt);
    const resentBytes = resumption.table.resentBytes;
    this.#logger.info({ afterMs, connections: kept, resentBytes }, `resumed after ${seconds(afterMs)} s: ${connections(kept)} kept, ${formatBytes(resentBytes)} re-sent`);
    this.#reconcileAfterResume(connected);
    const end = await session.closed;
    this.#slot.set(null);
    this.#current = null;
    return end;
  }

  /**
   * The server kept this session's -R listeners across the drop: withdraw
   * the forwards removed meanwhile (and again any unlisten the old link may
   * have lost; one for a listener already gone is ignored), and ask for the
   * ones added meanwhile.
   */
  #reconcileAfterResume(connected: ClientSession): void {
    for (const id of this.#forwards.withdrawnIds()) connected.control.send({ type: 'unlisten', id });
    const added = this.#forwards.takeUnrequested();
    if (added.length === 0) return;
    void this.#requestRemote(connected, added).then((results) => {
      for (const result of results) {
        if (result.ok) this.#logger.info({ forward: describeForward('-R', { ...result.spec, bindPort: result.port }), id: result.id }, '-R listening on the server');
        else if (result.withdrawn !== true && result.code !== TunnelErrorCode.SESSION_LOST) this.#logger.error({ forward: describeForward('-R', result.spec), code: result.code }, result.message);
      }
    });
  }

  /** After a reconnect, a -R forward that did not come back is retried while the session lasts, each time louder in the log. */
  #retryRemoteForwards(session: Session, connected: ClientSession, forwards: Array<{ id: number; spec: ForwardSpec }>, delayMs: number): void {
    this.#retryTimer = setTimeout(() => {
      if (session.isClosed || this.#stopping) return;
      // Not those removed since.
      const wanted = forwards.filter(({ id }) => this.#forwards.remoteSpec(id) !== undefined);
      void this.#requestRemote(connected, wanted).then((results) => {
        const still: Array<{ id: number; spec: ForwardSpec }> = [];
        for (const result of results) {
          if (result.ok) this.#logger.info({ forward: describeForward('-R', { ...result.spec, bindPort: result.port }) }, '-R listening on the server again');
          else if (result.withdrawn !== true) {
            still.push({ id: result.id, spec: result.spec });
            this.#logger.error({ forward: describeForward('-R', result.spec), code: result.code }, `-R forward still not back: ${result.message}`);
          }
        }
        if (still.length > 0) this.#retryRemoteForwards(session, connected, still, Math.min(delayMs * 2, this.#options.timings.backoffCapMs));
      });
    }, delayMs);
    this.#retryTimer.unref();
  }

  #afterTrust(connected: ClientSession): void {
    if (connected.recorded) {
      this.#logger.warn({ fingerprint: connected.fingerprint }, 'first connection to this server: recorded its fingerprint in known_hosts (trust on first use)');
    }
    this.#logger.debug({ fingerprint: connected.fingerprint }, 'TLS connected');
    // A pin (or a known_hosts record) trusts one exact certificate, dates
    // included, like an ssh host key: an expired one is accepted, but the
    // operator should hear about it. (CA mode refuses it in the handshake.)
    const { kind } = this.#options.trust;
    if ((kind === 'fingerprint' || kind === 'tofu') && Date.parse(connected.validTo) < Date.now()) {
      const why = kind === 'fingerprint' ? '--fingerprint pins this exact certificate' : 'known_hosts records this exact certificate';
      this.#logger.warn({ validTo: connected.validTo }, `the server's certificate expired on ${connected.validTo}; accepted because ${why} (dates are not checked for pinned certificates)`);
    }
  }

  #onServerMessage(message: ServerMessage): void {
    switch (message.type) {
      case 'forward-failed':
        this.#logger.warn({ streamId: message.streamId, code: message.code }, `the server could not serve a -L connection: ${message.message}`);
        return;
      case 'error':
        if (message.id === undefined) {
          this.#logger.error({ code: message.code }, message.message);
          if (message.code === TunnelErrorCode.ACCESS_REVOKED || message.code === TunnelErrorCode.SESSION_CLOSED) this.#revoked ??= new TunnelError(message.code, message.message);
        }
        return;
      case 'forward-closed': {
        const spec = this.#forwards.remoteSpec(message.id);
        if (spec === undefined) return;
        const forward = describeForward('-R', { ...spec, bindPort: this.#forwards.grantedPorts.get(message.id) ?? spec.bindPort });
        // Gone from this client too, so no reconnect asks for it again; a reload that still lists it asks once more.
        this.#forwards.remove(message.id);
        this.#stats.forgetForward(message.id);
        this.#logger.error({ forward, code: message.code }, `the server closed ${forward}: ${message.message}; it will not be asked for again`);
        return;
      }
      case 'ack':
        try {
          this.#resumption?.table.applyAcks(message.acks);
        } catch (error) {
          this.#logger.error({ error: describeError(error) }, 'the server acknowledged bytes it never got; reconnecting');
          this.#current?.session.close();
        }
        return;
      default:
        return;
    }
  }

  #onLocalConnection(listener: Parameters<typeof forwardLocalConnection>[0], socket: net.Socket): void {
    if (this.#stopping) {
      socket.resetAndDestroy();
      return;
    }
    const route = this.#routeOf('L', listener);
    if (this.#resumption) {
      this.#resumption.openLocal(listener, socket, this.#options.timings.waitForSessionMs, route);
      return;
    }
    // Waits for the first session (or a fresh one after a refused resume), then goes the way that session goes.
    void forwardLocalConnection(listener, socket, this.#slot, this.#options.timings.waitForSessionMs, this.#logger, route, (waited) => {
      if (!this.#resumption) return false;
      this.#resumption.openLocal(listener, waited, this.#options.timings.waitForSessionMs, route);
      return true;
    });
  }
}

export type { TunnelClientOptions } from './client-options.js';
