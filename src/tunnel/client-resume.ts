import type net from 'node:net';
import { ErrorCode, StreamResetError, type Session, type Stream } from '../muxado/index.js';
import { describeError } from '../util/errors.js';
import type { ClientControl } from './client-handshake.js';
import { logConnection } from './connection-log.js';
import { StreamKind, type ConnState, type ServerMessage } from './control-messages.js';
import { dialTarget } from './dial.js';
import { localForwardHeader, MAX_WAITING_PER_LISTENER, readServerStreamHeader, remoteProxyHeader, serveReverseDynamic, UNKNOWN_REMOTE_FORWARD, type RemoteForwardLookup } from './client-streams.js';
import { TunnelError, TunnelErrorCode } from './errors.js';
import { describeForward } from './forward.js';
import type { LocalListener } from './local-listeners.js';
import type { TunnelLogger } from './logger.js';
import { ConnTable, MAX_RESUME_CONNS } from './resume/conn-table.js';
import type { ConnEnd, ResumableConn } from './resume/conn.js';
import type { ResumeDecision } from './resume/resume-state.js';
import { encodeStreamHeader, isRemoteForwardHeader, isResumeStreamHeader, type LocalForwardHeader } from './stream-header.js';
import { connNotCarried, type ClientStats, type TrafficRoute } from './tunnel-stats.js';

const NO_FORWARDS: RemoteForwardLookup = { remoteSpec: () => undefined, allowTarget: [] };

/** What the client needs to come back to its session after the link dropped. */
export interface ResumeTicket {
  sessionId: string;
  secret: string;
  graceMs: number;
}

/**
 * The client's side of a resumable tunnel session: its forwarded
 * connections (a ConnTable that outlives transports), the -L connections
 * that wait while the link is down, and the resume exchange on a new link.
 */
export class ClientResumption {
  readonly ticket: ResumeTicket;
  readonly table = new ConnTable<LocalForwardHeader>(true);
  readonly #logger: TunnelLogger;
  readonly #waiting = new Map<LocalListener, number>();
  readonly #labels = new WeakMap<LocalListener, string>();
  #session: Session | null = null;
  /** When the link was lost (performance.now()), while it is down. */
  lostAt: number | null = null;
  /** Decisions of the resume in progress, by conn id; RESUME streams that came before them wait in `#early`. */
  #decisions: Map<number, ResumeDecision> | null = null;
  #early: Stream[] = [];

  constructor(ticket: ResumeTicket, logger: TunnelLogger) {
    this.ticket = ticket;
    this.#logger = logger;
  }

  /** The session carrying the conns now, with acks going out on its control stream. */
  attach(session: Session, control: ClientControl): void {
    this.#session = session;
    this.lostAt = null;
    this.#waiting.clear();
    this.table.setAckSink((acks) => control.send({ type: 'ack', acks }));
  }

  /** The link dropped: the conns keep their sockets and wait. */
  detach(): void {
    this.#session = null;
    this.#decisions = null;
    this.lostAt ??= performance.now();
    this.table.detachAll();
  }

  /** The session cannot be resumed: every conn is reset. */
  abort(reason: string): void {
    this.#session = null;
    this.table.abortAll(new TunnelError(TunnelErrorCode.SESSION_LOST, reason));
  }

  /** A connection to a -L listener: a conn at once, carried now or when the link is back (within bounds); it counts in `route`. */
  openLocal(listener: LocalListener, socket: net.Socket, waitMs: number, route: TrafficRoute): void {
    // The conn's own listeners take over at once (table.open below): no
    // error listener of its own here, which an idle connection would carry.
    const { spec } = listener;
    const forward = this.#forwardLabel(listener);
    const session = this.#session;
    if (session === null) {
      const waiting = this.#waiting.get(listener) ?? 0;
      if (waiting >= MAX_WAITING_PER_LISTENER) {
        this.#logger.warn({ forward, waiting }, 'not connected to the server and too many connections wait already; resetting a local connection');
        connNotCarried(route, 'refused');
        socket.on('error', () => {});
        socket.resetAndDestroy();
        return;
      }
      this.#waiting.set(listener, waiting + 1);
    }
    const header = localForwardHeader(spec, socket);
    const fields = { forward, peer: `${socket.remoteAddress}:${socket.remotePort}`, target: `${spec.targetHost}:${spec.targetPort}` };
    const closed = logConnection(this.#logger, fields);
    const conn = this.table.open(socket, { header, onEnd: (end) => this.#localEnded(forward, end, closed), route });
    if (session) {
      this.#openLocalStream(session, conn, header);
      return;
    }
    const timer = setTimeout(() => {
      this.#waiting.set(listener, Math.max(0, (this.#waiting.get(listener) ?? 1) - 1));
      if (!conn.attached && !conn.done) {
        this.#logger.warn({ forward }, `not connected to the server within ${waitMs / 1000} s; resetting a local connection`);
        conn.abort(new TunnelError(TunnelErrorCode.SESSION_LOST, 'not connected to the server in time'));
      }
    }, waitMs);
    timer.unref();
  }

  /** `-L bind:port:target`, made once per listener: every conn's end handler keeps it. */
  #forwardLabel(listener: LocalListener): string {
    let label = this.#labels.get(listener);
    if (label === undefined) {
      label = describeForward('-L', { ...listener.spec, bindPort: listener.address.port });
      this.#labels.set(listener, label);
    }
    return label;
  }

  #localEnded(forward: string, end: ConnEnd, closed: ((end: ConnEnd) => void) | undefined): void {
    closed?.(end);
    const error = end.error;
    if (error instanceof StreamResetError && error.remote && error.errorCode === ErrorCode.REFUSED_STREAM) {
      this.#logger.warn({ forward }, 'the server refused a -L connection (REFUSED_STREAM): it is at a limit such as its --max-streams, or its policy forbids the target');
    }
  }

  #openLocalStream(session: Session, conn: ResumableConn, header: LocalForwardHeader): void {
    let stream: Stream;
    try {
      stream = session.open({ type: StreamKind.LOCAL_FORWARD });
    } catch (error) {
      this.#logger.warn({ error: describeError(error) }, 'cannot open a stream; the connection waits for the next link');
      return;
    }
    stream.write(encodeStreamHeader({ ...header, conn: conn.id }));
    this.table.attach(conn, stream, { bytes: 0, fin: false });
  }

  /** A stream the server opened: a new -R connection, or an existing conn after a resume. */
  async serveStream(stream: Stream, forwards: RemoteForwardLookup, timings: { headerTimeoutMs: number; dialTimeoutMs: number }, stats?: ClientStats): Promise<void> {
    const header = await readServerStreamHeader(stream, [StreamKind.REMOTE_FORWARD, StreamKind.RESUME], timings.headerTimeoutMs, this.#logger);
    if (header === undefined) return;
    if (stream.type === StreamKind.RESUME) {
      if (!isResumeStreamHeader(header)) {
        stream.reset(ErrorCode.PROTOCOL_ERROR);
        return;
      }
      if (this.#decisions === null) {
        // The server's decisions may come after its stream: keep it until ours are made.
        stream.unshift(encodeStreamHeader(header));
        this.#early.push(stream);
        return;
      }
      const decision = this.#decisions.get(header.conn);
      const conn = this.table.get(header.conn);
      if (decision?.action !== 'attach' || !conn) {
        stream.reset(ErrorCode.REFUSED_STREAM);
        return;
      }
      this.table.attach(conn, stream, decision.peer);
      return;
    }
    if (!isRemoteForwardHeader(header) || header.conn === undefined || !this.table.sawPeerId(header.conn)) {
      this.#logger.warn({}, '-R stream without a new conn id; refusing');
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    // Looked up now, not when the session began: a forward removed since (or while the link was down) is refused.
    const spec = forwards.remoteSpec(header.forward);
    if (spec === undefined) {
      this.#logger.warn({ forward: header.forward }, UNKNOWN_REMOTE_FORWARD);
      stream.reset(ErrorCode.REFUSED_STREAM);
      return;
    }
    const id = header.conn;
    // Only the early RESUME streams come without stats, and they never get here.
    const route = stats?.forwardRoute('R', header.forward) ?? [];
    const dialTimes = stats ? { dialTimes: stats.dialTimes.R } : {};
    if (spec.dynamic === true) {
      serveReverseDynamic(stream, header, spec, {
        allowTarget: forwards.allowTarget,
        timeoutMs: timings.dialTimeoutMs,
        ...dialTimes,
        route,
        logger: this.#logger,
        carry: (socket, fields, target) => {
          // Adopted after the reply: the conn's byte sequence starts behind it, as the server's does.
          const conn = this.table.adopt(id, socket, { header: target, onEnd: logConnection(this.#logger, fields), route });
          this.table.attach(conn, stream, { bytes: 0, fin: false });
        },
      });
      return;
    }
    const target = `${spec.targetHost}:${spec.targetPort}`;
    const fields = { forward: describeForward('-R', spec), peer: header.peer, target, streamId: stream.id };
    const proxyHeader = remoteProxyHeader(spec, header, forwards.proxyProtocol);
    dialTarget(stream, {
      host: spec.targetHost,
      port: spec.targetPort,
      timeoutMs: timings.dialTimeoutMs,
      ...dialTimes,
      onConnected: (socket) => {
        // Before the conn adopts the socket: outside its byte sequence, so never replayed.
        if (proxyHeader) socket.write(proxyHeader);
        const conn = this.table.adopt(id, socket, { header: { host: spec.targetHost, port: spec.targetPort }, onEnd: logConnection(this.#logger, fields), route });
        this.table.attach(conn, stream, { bytes: 0, fin: false });
      },
      onFailed: (error) => {
        connNotCarried(route, 'dial_failed');
        this.#logger.warn({ peer: header.peer, forward: fields.forward }, `dialling ${target} failed: ${describeError(error)}`);
        this.#logger.debug({ ...fields, end: `dial failed: ${describeError(error)}` }, 'connection closed');
      },
    });
  }

  /**
   * The resume exchange on a new link the server accepted: read what it
   * received of each conn (its resume-state messages), decide, and carry
   * every conn on again. Resolves with how many conns go on.
   */
  exchange(session: Session, control: ClientControl, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const states: ConnState[] = [];
      let highestSeen = 0;
      let finished = false;
      const done = (): void => {
        finished = true;
        clearTimeout(timer);
        control.off('message', onMessage);
      };
      const timer = setTimeout(() => {
        done();
        reject(new TunnelError(TunnelErrorCode.HANDSHAKE, `the server did not finish the resume within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (message: ServerMessage): void => {
        if (message.type !== 'resume-state') return;
        states.push(...message.conns);
        highestSeen = message.highestSeen;
        if (states.length > MAX_RESUME_CONNS) {
          done();
          reject(new TunnelError(TunnelErrorCode.PROTOCOL, `the server listed more than ${MAX_RESUME_CONNS} conns in its resume`));
          return;
        }
        if (!message.last) return;
        done();
        try {
          resolve(this.#apply(session, highestSeen, states));
        } catch (error) {
          reject(error);
        }
      };
      // The channel is held since the 'resumed' (client-handshake.ts): what came with it is emitted on release.
      control.on('message', onMessage);
      void session.closed.then(() => {
        if (finished) return;
        done();
        reject(new TunnelError(TunnelErrorCode.SESSION_LOST, 'the link dropped during the resume'));
      });
    });
  }

  #apply(session: Session, highestSeen: number, states: ConnState[]): number {
    const decisions = this.table.decide({ highestSeen, conns: states.map(([id, receivedBytes, finReceived]) => ({ id, receivedBytes, finReceived })) });
    this.#decisions = new Map(decisions.map((d) => [d.id, d]));
    let kept = 0;
    for (const decision of decisions) {
      const conn = this.table.get(decision.id);
      switch (decision.action) {
        case 'attach':
          kept++;
          // Ours (odd ids) get a new stream from us; the server's come as RESUME streams.
          if (conn && decision.id % 2 === 1) {
            const stream = session.open({ type: StreamKind.RESUME });
            stream.write(encodeStreamHeader({ conn: conn.id }));
            this.table.attach(conn, stream, decision.peer);
          }
          break;
        case 'complete':
          conn?.ack(decision.peer.bytes, decision.peer.fin);
          break;
        case 'reopen':
          kept++;
          if (conn) this.#openLocalStream(session, conn, this.table.origin(decision.id)!.header);
          break;
        case 'abort':
          conn?.abort(new TunnelError(TunnelErrorCode.SESSION_LOST, `the server no longer has this connection (${decision.reason})`));
          break;
        default:
          break;
      }
    }
    // Early streams are RESUME streams (their headers were read): no forward is looked up.
    for (const stream of this.#early.splice(0)) void this.serveStream(stream, NO_FORWARDS, { headerTimeoutMs: 1_000, dialTimeoutMs: 1_000 });
    return kept;
  }
}
