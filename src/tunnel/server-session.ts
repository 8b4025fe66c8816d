import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { ErrorCode, type SessionEnd, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import { bridge } from './bridge.js';
import { logConnection } from './connection-log.js';
import { PROTOCOL_VERSION, StreamKind, type ClientMessage, type ConnState, type ListenMessage } from './control-messages.js';
import { awaitDialReply } from './dial-reply.js';
import { acceptSocks, type AcceptedSocks } from './socks/accept.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeListenError, type TunnelLogger } from './logger.js';
import { checkRemotePort } from './policy.js';
import { socketEnd, type ProxyProtocolVersion } from './proxy-protocol.js';
import { ConnTable, MAX_RESUME_CONNS } from './resume/conn-table.js';
import type { ResumableConn } from './resume/conn.js';
import type { ResumeDecision } from './resume/resume-state.js';
import type { LinkOwner, ServerConnection } from './server-connection.js';
import type { ServerLimits } from './server-limits.js';
import { applyIdleTimeout, serveDynamic, serveLocalForward, type ServerConnHeader, type ServerStreamDeps } from './server-streams.js';
import { encodeStreamHeader, isResumeStreamHeader, readStreamHeader, type RemoteForwardHeader } from './stream-header.js';
import type { UserRights } from './users.js';
import { connNotCarried, SessionTraffic, type ServerStats, type TrafficRoute, type TrafficSnapshot } from './tunnel-stats.js';

/** Connections one -R listener lets wait for the client while its link is down; more are reset. */
export const MAX_WAITING_PER_REMOTE_LISTENER = 128;
/** How long such a connection waits. */
export const REMOTE_WAIT_MS = 10_000;

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
  listeners: Array<{ id: number; bindHost: string; requested: number; port: number | null; dynamic: boolean } & TrafficSnapshot>;
  /** Forward streams open now, both directions. */
  streams: number;
  /** Connections kept across links (sessions that resume). */
  conns: number;
  detached: boolean;
  /** This session's forwarded connections and bytes by kind (in: from the tunnel to this side's sockets); -W counts as D. */
  traffic: { L: TrafficSnapshot; R: TrafficSnapshot; D: TrafficSnapshot };
}

/** -R listener of a session: the port the client asked for (0: any), and whether it said "listening" yet. */
interface RemoteListener {
  server: net.Server;
  bindHost: string;
  dynamic: boolean;
  /** The port asked for (0: any). */
  requested: number;
  /** The port bound; null while binding. */
  port: number | null;
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
  readonly #listeners = new Map<number, RemoteListener>();
  /** -R connections waiting while the link is down, per listener. */
  readonly #waiting = new Map<number, number>();
  #link: ServerConnection | null = null;
  #lastRemote = '';
  #detachedAt = 0;
  #graceTimer: NodeJS.Timeout | null = null;
  #ended = false;
  #expired = false;
  /** SOCKS connections to reverse dynamic listeners closed for a bad or missing handshake (debug log). */
  #socksRefused = 0;
  #draining = false;
  /** Counters of this session's connections (they count in its user's too). */
  readonly #traffic: SessionTraffic;
  /** What serving the client's -L and -D/-W streams needs from the session (server-streams.ts). */
  readonly #streamDeps: ServerStreamDeps;
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
    return this.#listeners.size;
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
      remoteListeners: this.#listeners.size,
      listeners: [...this.#listeners].map(([id, entry]) => ({
        id,
        bindHost: entry.bindHost,
        requested: entry.requested,
        port: entry.port,
        dynamic: entry.dynamic,
        ...this.#traffic.remoteSnapshot(id),
      })),
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
    for (const [id, entry] of [...this.#listeners]) {
      // The bound port, not the one asked for: "any port" (0) got one the new rules may exclude.
      const refusal = checkRemotePort(rights.policy, entry.port ?? entry.requested, rights.allowRemoteFrom);
      if (!refusal) continue;
      this.#listeners.delete(id);
      entry.server.close();
      const message = `${refusal}: the server closed this -R listener`;
      this.logger.warn({ forward: id, port: entry.port ?? entry.requested, code: TunnelErrorCode.POLICY }, message);
      // Not answered yet: the client still waits for its listen request's reply.
      this.#link?.send(entry.port !== null ? { type: 'forward-closed', id, code: TunnelErrorCode.POLICY, message } : { type: 'error', id, code: TunnelErrorCode.POLICY, message });
    }
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
    this.#closeListeners();
  }

  /** Ends the session for good: its link, its listeners, its connections (reset). */
  end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#closeListeners();
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
        return this.#onListen(link, message);
      case 'unlisten':
        return this.#onUnlisten(message.id);
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
          if (conn) this.#openRemoteStream(link, conn, table.origin(decision.id)?.header as RemoteForwardHeader);
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
    let header: unknown;
    try {
      header = await readStreamHeader(stream, this.#context.limits.headerTimeoutMs);
    } catch (error) {
      this.logger.warn({ error: describeError(error) }, 'bad resume stream header; resetting the stream');
      stream.reset(ErrorCode.PROTOCOL_ERROR);
      return;
    }
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

  // ---- -R ----

  #onListen(link: ServerConnection, request: ListenMessage): void {
    const { id, bindHost, port } = request;
    const refuse = (code: string, message: string): void => {
      this.logger.warn({ bindHost, port, code }, `refused -R: ${message}`);
      link.send({ type: 'error', id, code, message });
    };
    const held = this.#listeners.get(id);
    if (held) {
      // The same request again: its answer died with a link and the client resumed. Answer it again.
      const same = held.bindHost === bindHost && held.dynamic === (request.dynamic === true) && (held.requested === port || held.port === port);
      if (same && held.port !== null) return link.send({ type: 'listening', id, bindHost, port: held.port });
      if (same) return; // still binding: the answer comes when it is bound
      return refuse(TunnelErrorCode.PROTOCOL, `forward id ${id} is already in use`);
    }
    const rights = this.#rights;
    if (this.#listeners.size >= rights.maxRemoteListeners) {
      this.#context.stats.limitRefusals.max_remote_listeners++;
      return refuse(TunnelErrorCode.LIMIT, `this client already holds ${this.#listeners.size} -R listeners (its limit)`);
    }
    const refusal = checkRemotePort(rights.policy, port, rights.allowRemoteFrom);
    if (refusal) return refuse(TunnelErrorCode.POLICY, refusal);

    // noDelay, as OpenSSH sets on forwarded sockets: a reply written in pieces must not wait for an ACK (Nagle).
    const listener = net.createServer({ allowHalfOpen: true, noDelay: true });
    const entry: RemoteListener = { server: listener, bindHost, dynamic: request.dynamic === true, requested: port, port: null };
    // Held from now, not from when the bind completes: requests that arrive
    // together must all see it, or each would pass the limit.
    this.#listeners.set(id, entry);
    listener.on('connection', (socket) => (request.dynamic === true ? void this.#onReverseDynamic(id, socket) : this.#onRemoteConnection(id, socket)));
    listener.once('error', (error: NodeJS.ErrnoException) => {
      if (this.#listeners.get(id) !== entry) return; // closed meanwhile (a reconfigure said why)
      this.#listeners.delete(id);
      refuse(TunnelErrorCode.BIND, `cannot listen on ${bindHost}:${port}: ${describeListenError(error)}`);
    });
    listener.listen({ host: bindHost, port }, () => {
      if (this.#ended || this.#listeners.get(id) !== entry) {
        // The session ended, or drained its listeners, while this one was binding.
        listener.close();
        return;
      }
      listener.on('error', (error) => this.logger.warn({ error: describeError(error) }, '-R listener failed'));
      const actual = (listener.address() as net.AddressInfo).port;
      entry.port = actual;
      this.logger.info({ bindHost, port: actual }, '-R listening');
      link.send({ type: 'listening', id, bindHost, port: actual });
    });
  }

  /**
   * The client withdrew a -R forward (its config changed): the port is
   * free when this returns; connections the listener accepted go on until
   * they end. An id not held (refused, or a withdraw that raced the bind's
   * failure) is not an error: the client cannot know.
   */
  #onUnlisten(id: number): void {
    const entry = this.#listeners.get(id);
    if (!entry) {
      this.logger.debug({ forward: id }, 'unlisten for a -R forward this session does not hold; ignored');
      return;
    }
    this.#listeners.delete(id);
    this.#waiting.delete(id);
    // Still binding: the listen callback sees it gone, closes it and answers nothing.
    if (!entry.server.listening) return;
    const address = entry.server.address() as net.AddressInfo;
    entry.server.close();
    this.logger.info({ bindHost: address.address, port: address.port }, '-R closed: the client withdrew it');
  }

  /**
   * Stops the -R listeners accepting; their ports are free when this
   * returns (close() releases the socket at once). Not close()'s callback:
   * that waits for every connection the listener accepted.
   */
  #closeListeners(): void {
    for (const { server } of this.#listeners.values()) server.close();
    this.#listeners.clear();
  }

  #onRemoteConnection(forward: number, socket: net.Socket): void {
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const local = socket.address() as net.AddressInfo;
    const dest = socketEnd(socket, 'local');
    const header: RemoteForwardHeader = { forward, peer, ...(dest !== undefined ? { dest } : {}) };
    const fields = { forward: `-R ${local.address}:${local.port}`, peer, target: `the client's forward ${forward}` };
    const link = this.#link;
    const route = this.#traffic.remoteRoute(forward);
    if (this.#table) {
      if (!link) {
        // The link is down: the connection waits for the client's resume (it is reopened then), within bounds.
        const waiting = this.#waiting.get(forward) ?? 0;
        if (waiting >= MAX_WAITING_PER_REMOTE_LISTENER) {
          this.logger.warn({ ...fields, waiting }, 'the client is away and too many connections wait already; resetting one');
          this.#context.stats.limitRefusals.max_waiting++;
          connNotCarried(route, 'refused');
          socket.resetAndDestroy();
          return;
        }
        this.#waiting.set(forward, waiting + 1);
      }
      applyIdleTimeout(socket, this.#context.limits.idleTimeoutMs, this.logger);
      const conn = this.#table.open(socket, { header, onEnd: logConnection(this.logger, fields), route });
      if (link) this.#openRemoteStream(link, conn, header);
      else this.#expireIfUnclaimed(conn, forward);
      return;
    }
    if (!link) {
      connNotCarried(route, 'dial_failed');
      socket.resetAndDestroy();
      return;
    }
    let stream: Stream;
    try {
      stream = this.#openForward(link, route);
    } catch (error) {
      this.logger.warn({ error: describeError(error) }, 'cannot open a -R stream; resetting the connection');
      socket.resetAndDestroy();
      return;
    }
    applyIdleTimeout(socket, this.#context.limits.idleTimeoutMs, this.logger);
    stream.write(encodeStreamHeader(header));
    // bridge() handles both sides' errors from here; no listener of our own is needed.
    bridge(socket, stream, logConnection(this.logger, { ...fields, streamId: stream.id }), route);
  }

  /**
   * A connection to a reverse dynamic -R listener: the SOCKS handshake
   * here, then a REMOTE_FORWARD stream whose header names the requested
   * target; the client checks its --allow-target, dials, and answers with
   * a dial reply before any forwarded byte. Only then does the SOCKS
   * client hear success. With resumption the conn id is reserved for the
   * header and the conn adopted after the reply, as for -D.
   */
  async #onReverseDynamic(forward: number, socket: net.Socket): Promise<void> {
    socket.on('error', () => {});
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const local = socket.address() as net.AddressInfo;
    const fields = { forward: `-R ${local.address}:${local.port} (SOCKS)`, peer, target: '?' };
    let request: AcceptedSocks;
    try {
      request = await acceptSocks(socket, this.#context.limits.headerTimeoutMs);
    } catch (error) {
      this.#socksRefused++;
      this.logger.debug({ ...fields, error: describeError(error), socksRefused: this.#socksRefused }, 'closed a SOCKS connection');
      return;
    }
    fields.target = `${request.host}:${request.port}`;
    const link = this.#link;
    const route = this.#traffic.remoteRoute(forward);
    if (!link || this.#draining) {
      connNotCarried(route, 'dial_failed');
      request.answer('failed');
      return;
    }
    const table = this.#table;
    const id = table?.reserveId();
    const header: RemoteForwardHeader = { forward, peer, host: request.host, port: request.port };
    let stream: Stream;
    try {
      stream = this.#openForward(link, route);
    } catch (error) {
      this.logger.warn({ error: describeError(error) }, 'cannot open a -R stream; refusing a SOCKS connection');
      request.answer('failed');
      return;
    }
    stream.on('error', () => {});
    stream.write(encodeStreamHeader(id === undefined ? header : { ...header, conn: id }));
    const outcome = await awaitDialReply(stream, this.#context.limits.dialTimeoutMs + this.#context.limits.headerTimeoutMs);
    if (!outcome.ok) {
      connNotCarried(route, outcome.failure === 'policy' ? 'refused' : 'dial_failed');
      request.answer(outcome.failure);
      this.logger.info({ ...fields, reason: outcome.failure }, `SOCKS connection refused by the client: ${outcome.message}`);
      return;
    }
    if (socket.destroyed) {
      connNotCarried(route, 'dial_failed');
      stream.reset(ErrorCode.CANCEL);
      return;
    }
    request.answer(null);
    applyIdleTimeout(socket, this.#context.limits.idleTimeoutMs, this.logger);
    const closed = logConnection(this.logger, { ...fields, streamId: stream.id });
    if (table && id !== undefined && !link.session.isClosed) {
      const conn = table.adopt(id, socket, { header, onEnd: closed, route });
      table.attach(conn, stream, { bytes: 0, fin: false });
      return;
    }
    bridge(socket, stream, closed, route);
    socket.resume();
  }

  /** A -R connection that came while the link was down: reset if no resume claims it in time. */
  #expireIfUnclaimed(conn: ResumableConn, forward: number): void {
    const timer = setTimeout(() => {
      this.#waiting.set(forward, Math.max(0, (this.#waiting.get(forward) ?? 1) - 1));
      if (!conn.attached && !conn.done) conn.abort(new TunnelError(TunnelErrorCode.SESSION_LOST, `the client did not come back within ${REMOTE_WAIT_MS / 1000} s`));
    }, REMOTE_WAIT_MS);
    timer.unref();
  }

  #openRemoteStream(link: ServerConnection, conn: ResumableConn, header: RemoteForwardHeader): void {
    let stream: Stream;
    try {
      stream = this.#openForward(link);
    } catch (error) {
      this.logger.warn({ error: describeError(error) }, 'cannot open a -R stream; the connection waits for the next link');
      return;
    }
    stream.write(encodeStreamHeader({ ...header, conn: conn.id }));
    this.#table!.attach(conn, stream, { bytes: 0, fin: false });
  }

  /** A REMOTE_FORWARD stream, within the user's maxStreams; throws when at it (the callers reset the connection, counted here in `route`). */
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
    this.#waiting.clear();
    link.adopt(this);
    this.#table?.setAckSink((acks) => link.send({ type: 'ack', acks }));
  }
}
