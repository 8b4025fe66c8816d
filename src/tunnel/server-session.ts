import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { ErrorCode, type SessionEnd, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { PROTOCOL_VERSION, StreamKind, type ClientMessage, type ConnState } from './control-messages.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import type { TunnelLogger } from './logger.js';
import type { ProxyProtocolVersion } from './proxy-protocol.js';
import { ConnTable, MAX_RESUME_CONNS } from './resume/conn-table.js';
import type { ResumableConn } from './resume/conn.js';
import type { ResumeDecision } from './resume/resume-state.js';
import type { LinkOwner, ServerConnection } from './server-connection.js';
import type { ServerLimits } from './server-limits.js';
import { RemoteListeners, type RemoteListenerInfo } from './server-remote-listeners.js';
import { serveDynamic, serveLocalForward, type ServerConnHeader, type ServerStreamDeps } from './server-streams.js';
import { encodeStreamHeader, isResumeStreamHeader, readHeaderOrReset, type RemoteForwardHeader } from './stream-header.js';
import type { UserRights } from './users.js';
import { connNotCarried, SessionTraffic, type ServerStats, type TrafficRoute, type TrafficSnapshot } from './tunnel-stats.js';

/** Who a session belongs to: the user, the token hash it authenticated with (revocation is by token), and what the user may do. */
export interface SessionIdentity {
  user: string;
  tokenHash: string;
  rights: UserRights;
}

/** One session as the server's `sessions()` shows it. */
export interface SessionInfo {
  sessionId: string;
  user: string;
  clientId: string;
  /** The client's address:port; null while detached (waiting for a resume). */
  remote: string | null;
  /** The address:port of its current link, or of the last one while detached. */
  lastRemote: string;
  since: Date;
  /** Round-trip time the link's last heartbeat measured (ms); null before the first, or while detached. */
  rttMs: number | null;
  /** The smallest heartbeat round trip of the current link (ms): the path's, without queueing; null as rttMs. */
  minRttMs: number | null;
  remoteListeners: number;
  /** Its -R listeners: the client's forward id, the address asked for, the port bound (null while binding), their connections and bytes. */
  listeners: RemoteListenerInfo[];
  /** Forward streams open now, both directions. */
  streams: number;
  /** Connections kept across links (sessions that resume). */
  conns: number;
  detached: boolean;
  /** This session's forwarded connections and bytes by kind (in: from the tunnel to this side's sockets); -W counts as D. */
  traffic: { L: TrafficSnapshot; R: TrafficSnapshot; D: TrafficSnapshot };
}

/** What a tunnel session needs from its server. */
export interface SessionContext {
  /** The server's limits as they are now (a reconfigure changes them); the user's own are in its rights. */
  readonly limits: ServerLimits;
  logger: TunnelLogger;
  /** How long a session whose link dropped is kept for a resume; 0: never. */
  readonly resumeGraceMs: number;
  /** The PROXY header -L targets get first, as the server's options say now (a reconfigure changes it). */
  readonly proxyProtocol?: ProxyProtocolVersion | undefined;
  /** The session is over for good (ended, expired or replaced). */
  ended(session: ServerSession): void;
  /** The server's counters (by user; dial times; limit refusals). */
  readonly stats: ServerStats;
}

/**
 * One client's tunnel session on the server: its -R listeners and, when it
 * resumes, its forwarded connections with their replay buffers. It is
 * carried by one link (a TLS connection, server-connection.ts) at a time;
 * when the link drops, a resumable session waits `resumeGraceMs` for the
 * client to come back on a new one (docs/protocol.md, "Resuming").
 * The -R listeners are a RemoteListeners (server-remote-listeners.ts); the
 * -L and -D/-W streams the client opens are served by server-streams.ts.
 */
export class ServerSession implements LinkOwner {
  readonly sessionId = randomUUID();
  readonly clientId: string;
  readonly user: string;
  readonly tokenHash: string;
  readonly since = new Date();
  /** Lines about this session carry its user. */
  readonly logger: TunnelLogger;
  #rights: UserRights;
  /** Forward streams open on the current link, client-opened and server-opened, against the user's maxStreams. */
  #inbound = new Set<Stream>();
  #outbound = new Set<Stream>();
  /** The proof a resume must show; null when this session does not resume. */
  readonly #secret: Buffer | null;
  readonly #context: SessionContext;
  readonly #table: ConnTable<ServerConnHeader> | null;
  #link: ServerConnection | null = null;
  #lastRemote = '';
  #detachedAt = 0;
  #graceTimer: NodeJS.Timeout | null = null;
  #ended = false;
  #expired = false;
  #draining = false;
  /** Counters of this session's connections (they count in its user's too). */
  readonly #traffic: SessionTraffic;
  /** What serving the client's -L and -D/-W streams needs from the session (server-streams.ts). */
  readonly #streamDeps: ServerStreamDeps;
  /** Its -R listeners and the connections they accept (server-remote-listeners.ts). */
  readonly #remote: RemoteListeners;
  /** The resume exchange in progress: the client's conn states so far, and RESUME streams that came before the decisions. */
  #resume: { states: ConnState[]; highestSeen: number; started: number; early: Stream[]; decisions: Map<number, ResumeDecision> | null } | null = null;

  constructor(context: SessionContext, identity: SessionIdentity, clientId: string, resumable: boolean) {
    this.#context = context;
    this.clientId = clientId;
    this.user = identity.user;
    this.tokenHash = identity.tokenHash;
    this.#rights = identity.rights;
    this.logger = context.logger.child({ user: identity.user });
    this.#secret = resumable && context.resumeGraceMs > 0 ? randomBytes(32) : null;
    this.#table = this.#secret ? new ConnTable<ServerConnHeader>(false) : null;
    this.#traffic = new SessionTraffic(context.stats.user(identity.user));
    this.#streamDeps = { link: () => this.#link, logger: this.logger, rights: () => this.#rights, server: context, traffic: this.#traffic, table: this.#table };
    this.#remote = new RemoteListeners({ ...this.#streamDeps, openForward: (link, route) => this.#openForward(link, route) });
  }

  get link(): ServerConnection | null {
    return this.#link;
  }

  /** The session ended because nobody resumed it within the grace. */
  get expired(): boolean {
    return this.#expired;
  }

  get isDetached(): boolean {
    return this.#link === null && !this.#ended;
  }

  get remoteListeners(): number {
    return this.#remote.size;
  }

  get replayBytes(): number {
    return this.#table?.replayBytes ?? 0;
  }

  /** Forwarded connections this session holds across links (0 when it does not resume). */
  get conns(): number {
    return this.#table?.size ?? 0;
  }

  get rights(): UserRights {
    return this.#rights;
  }

  info(): SessionInfo {
    const link = this.#link;
    return {
      sessionId: this.sessionId,
      user: this.user,
      clientId: this.clientId,
      remote: link?.remote ?? null,
      lastRemote: this.#lastRemote,
      since: this.since,
      rttMs: link && link.session.rtt >= 0 ? link.session.rtt : null,
      minRttMs: link && link.session.minRtt >= 0 ? link.session.minRtt : null,
      remoteListeners: this.#remote.size,
      listeners: this.#remote.list(),
      streams: link ? this.#inbound.size + this.#outbound.size : 0,
      conns: this.conns,
      detached: this.isDetached,
      traffic: { L: this.#snapshot('L'), R: this.#snapshot('R'), D: this.#snapshot('D') },
    };
  }

  #snapshot(direction: 'L' | 'R' | 'D'): TrafficSnapshot {
    const { connections, connectionsTotal, bytesIn, bytesOut } = this.#traffic.directions[direction].snapshot();
    return { connections, connectionsTotal, bytesIn, bytesOut };
  }

  /**
   * New rights after a reconfigure: new streams and -R requests follow them;
   * a -R listener on a port they no longer allow is closed (its open
   * connections may finish) and the client told which. The rest is untouched.
   */
  setRights(rights: UserRights): void {
    this.#rights = rights;
    this.#remote.rightsChanged();
  }

  /** The user or token is gone: tells the client why (ERR_MUXTUN_ACCESS_REVOKED), then ends the session for good (no resume). */
  revoke(message: string): void {
    this.#endTelling(TunnelErrorCode.ACCESS_REVOKED, message);
  }

  /** The operator closed it (`muxtun session close`): tells the client why (ERR_MUXTUN_SESSION_CLOSED), then ends it for good (no resume). */
  closeByOperator(message: string): void {
    this.#endTelling(TunnelErrorCode.SESSION_CLOSED, message);
  }

  /** A detached session has no link to tell: the server answers its resume with the same code instead. */
  #endTelling(code: TunnelErrorCode, message: string): void {
    if (this.#ended) return;
    this.logger.warn({ sessionId: this.sessionId, code }, message);
    this.#link?.refuse(code, message);
    this.end(message);
  }

  /** Whether `secret` (base64url) is this session's, compared in constant time. */
  secretMatches(secret: string): boolean {
    if (this.#secret === null) return false;
    const given = Buffer.from(secret, 'base64url');
    return given.length === this.#secret.length && timingSafeEqual(given, this.#secret);
  }

  /** The first link: says welcome (with the resume secret when the session resumes). */
  start(link: ServerConnection): void {
    this.#attach(link);
    link.send({
      type: 'welcome',
      version: PROTOCOL_VERSION,
      sessionId: this.sessionId,
      ...(this.#secret ? { resume: { secret: this.#secret.toString('base64url'), graceMs: this.#context.resumeGraceMs } } : {}),
    });
  }

  /**
   * A resume on a new link: the old link, if the server still thinks it is
   * alive (a half-open connection after a network switch), is closed at once.
   * Then both sides tell what they received of each conn and re-send the rest.
   */
  resume(link: ServerConnection): void {
    const old = this.#link;
    this.#link = null;
    if (old) {
      old.close('replaced by a resume of the same session');
      this.#table?.detachAll();
    }
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    const started = this.#detachedAt || performance.now();
    this.#resume = { states: [], highestSeen: 0, started, early: [], decisions: null };
    // Our state as it was when the link dropped, before the client's (which
    // may have come with its hello) is applied: both sides decide on the same facts.
    link.send({ type: 'resumed', sessionId: this.sessionId });
    for (const message of this.#table!.resumeMessages()) link.send({ type: 'resume-state', ...message });
    this.#attach(link);
  }

  /** Stops new streams: GOAWAY and no more -R accepts. Open streams go on. */
  drainStart(reason: string): void {
    this.#draining = true;
    this.#link?.session.goAway(ErrorCode.NO_ERROR, reason);
    this.#remote.drain();
  }

  /** Ends the session for good: its link, its listeners, its connections (reset). */
  end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#remote.end();
    this.#table?.abortAll(new TunnelError(TunnelErrorCode.SESSION_LOST, reason));
    this.#link?.close(reason);
    this.#context.ended(this);
  }

  /** The link's transport ended: end the session, or keep it for a resume if it dropped. */
  linkEnded(link: ServerConnection, end: SessionEnd): void {
    if (link !== this.#link) return;
    this.#link = null;
    this.#resume = null;
    const clean = end.error === undefined || link.isClosing;
    const fields = { sessionId: this.sessionId, ...(end.error ? { reason: end.error.message } : {}) };
    if (this.#table && !clean && !this.#draining && !this.#ended) {
      this.#table.detachAll();
      this.#detachedAt = performance.now();
      const graceMs = this.#context.resumeGraceMs;
      this.logger.info({ ...fields, graceS: graceMs / 1000, connections: this.#table.size }, 'session detached; keeping it for resume');
      this.#graceTimer = setTimeout(() => {
        this.logger.warn({ sessionId: this.sessionId, connections: this.#table?.size ?? 0 }, 'detached session expired; its connections were reset');
        this.#expired = true;
        this.end(`the session expired after ${graceMs / 1000} s without the client`);
      }, graceMs);
      this.#graceTimer.unref();
      return;
    }
    if (end.error && !link.isClosing) this.logger.warn(fields, 'client session ended');
    else this.logger.info(fields, 'client session ended');
    this.end('the client session ended');
  }

  // ---- what arrives on the link ----

  onMessage(message: ClientMessage): void {
    const link = this.#link;
    if (!link) return;
    switch (message.type) {
      case 'hello':
        return;
      case 'listen':
        return this.#remote.listen(link, message);
      case 'unlisten':
        return this.#remote.unlisten(message.id);
      case 'ack':
        if (!this.#table) return link.refuse(TunnelErrorCode.PROTOCOL, 'ack in a session that does not resume');
        try {
          this.#table.applyAcks(message.acks);
        } catch (error) {
          link.refuse(TunnelErrorCode.PROTOCOL, describeError(error));
        }
        return;
      case 'resume-state':
        return this.#onResumeState(link, message.highestSeen, message.conns, message.last);
    }
  }

  onStream(stream: Stream): void {
    // A resumed conn was counted when it opened; only new forwards are refused.
    if (stream.type !== StreamKind.RESUME && this.#inbound.size >= this.#rights.maxStreams) {
      this.logger.warn({ streamType: stream.type, maxStreams: this.#rights.maxStreams }, 'refused a stream: the client is at its max-streams');
      this.#context.stats.limitRefusals.max_streams++;
      if (stream.type === StreamKind.LOCAL_FORWARD || stream.type === StreamKind.DYNAMIC) connNotCarried(this.#traffic.route(stream.type === StreamKind.LOCAL_FORWARD ? 'L' : 'D'), 'refused');
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    this.#inbound.add(stream);
    if (stream.type === StreamKind.LOCAL_FORWARD) {
      void serveLocalForward(stream, this.#streamDeps);
      return;
    }
    if (stream.type === StreamKind.DYNAMIC) {
      void serveDynamic(stream, this.#streamDeps);
      return;
    }
    if (stream.type === StreamKind.RESUME && this.#table) {
      void this.#onResumeStream(stream);
      return;
    }
    this.logger.warn({ streamType: stream.type }, 'stream of a type a client may not open; refusing');
    stream.reset(ErrorCode.REFUSED_STREAM);
  }

  // ---- resuming ----

  #onResumeState(link: ServerConnection, highestSeen: number, states: ConnState[], last: boolean): void {
    const resume = this.#resume;
    if (!resume || resume.decisions !== null) return link.refuse(TunnelErrorCode.PROTOCOL, 'resume-state outside a resume');
    resume.states.push(...states);
    resume.highestSeen = highestSeen;
    if (resume.states.length > MAX_RESUME_CONNS) return link.refuse(TunnelErrorCode.PROTOCOL, 'too many conns in a resume');
    if (!last) return;
    let decisions: ResumeDecision[];
    try {
      decisions = this.#table!.decide({ highestSeen: resume.highestSeen, conns: resume.states.map(([id, receivedBytes, finReceived]) => ({ id, receivedBytes, finReceived })) });
    } catch (error) {
      return link.refuse(TunnelErrorCode.PROTOCOL, describeError(error));
    }
    resume.decisions = new Map(decisions.map((d) => [d.id, d]));
    const table = this.#table!;
    let kept = 0;
    for (const decision of decisions) {
      const conn = table.get(decision.id);
      switch (decision.action) {
        case 'attach':
          kept++;
          // Our conns (even ids) get a new stream from us; the client's come as RESUME streams.
          if (conn && decision.id % 2 === 0) this.#reattach(link, conn, decision.peer);
          break;
        case 'complete':
          conn?.ack(decision.peer.bytes, decision.peer.fin);
          break;
        case 'reopen':
          if (conn) this.#remote.openStream(link, conn, table.origin(decision.id)?.header as RemoteForwardHeader);
          kept++;
          break;
        case 'abort':
          conn?.abort(new TunnelError(TunnelErrorCode.SESSION_LOST, `the client no longer has this connection (${decision.reason})`));
          break;
        default:
          break;
      }
    }
    for (const stream of resume.early.splice(0)) void this.#onResumeStream(stream);
    this.logger.info({ sessionId: this.sessionId, afterMs: Math.round(performance.now() - resume.started), connections: kept }, 'session resumed');
  }

  #reattach(link: ServerConnection, conn: ResumableConn, peer: { bytes: number; fin: boolean }): void {
    let stream: Stream;
    try {
      stream = link.session.open({ type: StreamKind.RESUME });
    } catch {
      return; // the new link is gone too: the conn stays detached
    }
    this.#outbound.add(stream);
    stream.write(encodeStreamHeader({ conn: conn.id }));
    this.#table!.attach(conn, stream, peer);
  }

  async #onResumeStream(stream: Stream): Promise<void> {
    const header = await readHeaderOrReset(stream, this.#context.limits.headerTimeoutMs, this.logger, 'resume stream header');
    if (header === undefined) return;
    const resume = this.#resume;
    if (!isResumeStreamHeader(header) || !resume) {
      stream.reset(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (resume.decisions === null) {
      stream.unshift(encodeStreamHeader(header));
      resume.early.push(stream);
      return;
    }
    const decision = resume.decisions.get(header.conn);
    const conn = this.#table!.get(header.conn);
    if (decision?.action !== 'attach' || !conn) {
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    try {
      this.#table!.attach(conn, stream, decision.peer);
    } catch (error) {
      this.#link?.refuse(TunnelErrorCode.PROTOCOL, describeError(error));
    }
  }

  // ---- the link and the streams on it ----

  /** A REMOTE_FORWARD stream for a -R connection (server-remote-listeners.ts), within the user's maxStreams; throws when at it (the callers reset the connection, counted here in `route`). */
  #openForward(link: ServerConnection, route?: TrafficRoute): Stream {
    if (this.#outbound.size >= this.#rights.maxStreams) {
      this.#context.stats.limitRefusals.max_streams++;
      if (route) connNotCarried(route, 'refused');
      throw new TunnelError(TunnelErrorCode.LIMIT, `${this.#outbound.size} -R streams are open: the client's max-streams`);
    }
    const stream = link.session.open({ type: StreamKind.REMOTE_FORWARD });
    this.#outbound.add(stream);
    return stream;
  }

  #attach(link: ServerConnection): void {
    this.#link = link;
    this.#lastRemote = link.remote;
    this.#inbound = new Set();
    this.#outbound = new Set();
    const inbound = this.#inbound;
    const outbound = this.#outbound;
    link.session.on('streamclose', (stream) => {
      inbound.delete(stream);
      outbound.delete(stream);
    });
    this.#detachedAt = 0;
    this.#remote.linkAttached();
    link.adopt(this);
    this.#table?.setAckSink((acks) => link.send({ type: 'ack', acks }));
  }
}
