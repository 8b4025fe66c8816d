import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { resolveSessionConfig, type SessionConfig, type SessionOptions } from './config.js';
import { ErrorCode, EXTENSION_TYPE_MIN, FrameType, HEARTBEAT_STREAM_TYPE, MAX_STREAM_ID, MAX_U32, errorCodeName } from './constants.js';
import { FrameDecoder, type FrameHandler } from './decoder.js';
import {
  GoAwayError,
  InternalError,
  InvalidArgumentError,
  LimitError,
  MuxadoError,
  ProtocolError,
  SessionClosedError,
  TransportError,
} from './errors.js';
import { encodeGoAway, encodeRst, encodeSyn } from './frame.js';
import { Heartbeat } from './heartbeat.js';
import { Outbound } from './outbound.js';
import { Stream, type StreamHost } from './stream.js';

export interface OpenOptions {
  /** Stream type sent in the SYN (0 to 0xFFFFFEFE; higher types are reserved for extensions). */
  type?: number;
  /** Priority sent in the SYN (u32). The peer may ignore it. */
  priority?: number;
}

export interface GoAwayInfo {
  /** The highest stream id of ours the peer processed; streams above it were refused. */
  lastStreamId: number;
  errorCode: number;
  message: string;
}

/** Why a session ended: `session.closed` resolves with it and `'close'` carries it. */
export interface SessionEnd {
  /** Who ended it: this side (close(), a protocol error it detected, a dead peer) or the peer. */
  initiator: 'local' | 'remote';
  /** Absent for a clean close by either side. */
  error?: MuxadoError;
  /** The peer's GOAWAY, if it sent one. */
  goAway?: GoAwayInfo;
}

/** Options of `Session.streamsClosed()`. */
export interface StreamsClosedOptions {
  /** Streams not to wait for, such as a control stream that stays open until the end. */
  except?: Iterable<Stream>;
  /** Stops waiting: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface SessionEvents {
  /** A stream the peer opened (never an extension stream). */
  stream: [stream: Stream];
  /**
   * A stream left the session's table: both directions ended, it was reset,
   * or the session ended. Emitted once per stream `openStreams` counted, when
   * it stops counting it (before the stream's own `'close'`). Never for
   * extension streams, nor for streams refused before they were open.
   */
  streamclose: [stream: Stream];
  /** The peer sent GOAWAY: it takes no new streams. */
  goaway: [info: GoAwayInfo];
  /** A stream the peer opened was refused because a limit was reached. */
  refused: [error: LimitError, streamId: number];
  /** The session failed. Emitted only when someone listens: a session never crashes the process. */
  error: [error: MuxadoError];
  close: [end: SessionEnd];
}

const EMPTY = Buffer.alloc(0);
const frameNames: Record<FrameType, string> = {
  [FrameType.SYN]: 'SYN',
  [FrameType.RST]: 'RST',
  [FrameType.DATA]: 'DATA',
  [FrameType.WNDINC]: 'WNDINC',
  [FrameType.GOAWAY]: 'GOAWAY',
};

// A stream the peer opened can fail (an RST, the session ending) before the
// application holds it: while it waits in the backlog, or between resolving
// accept() and the code after the `await` (destroy() emits 'error' on
// nextTick, ahead of promise continuations). An 'error' nobody listens to
// would crash the process, so until the application has had its turn the
// stream carries this no-op listener; the failure stays in `stream.errored`.
const ignoreUnclaimedError = (): void => {};
// Ids of streams we reset recently, so late frames for them are dropped quietly.
const RECENT_RESETS = 1024;
// Bytes handed to the decoder in one event-loop turn before the transport is
// paused until the next turn. One readable event can deliver everything the
// kernel holds (libuv reads up to 32 x 64 KiB, TLS decrypts it all at once):
// frames queued meanwhile, a ping's answer among them, would wait behind it.
const READ_BUDGET = 128 * 1024;

/**
 * A muxado session over one transport (any `stream.Duplex`; a `net.Socket`
 * or `tls.TLSSocket` in practice). Create it with `client()` or `server()`.
 */
export class Session extends EventEmitter<SessionEvents> {
  /** Settles when the session ends, with why. It never rejects. */
  readonly closed: Promise<SessionEnd>;
  readonly isClient: boolean;

  readonly #transport: Duplex;
  readonly #config: SessionConfig;
  readonly #streams = new Map<number, Stream>();
  readonly #decoder: FrameDecoder;
  readonly #writer: Outbound;
  readonly #heartbeat: Heartbeat;
  readonly #host: StreamHost;
  readonly #recentResets = new Set<number>();
  #nextLocalId: number;
  #lastRemoteId: number;
  #localCount = 0;
  #remoteCount = 0;
  #windowGrowth = 0;
  #readThisTurn = 0;
  #readPaused = false;
  #backlog: Stream[] = [];
  #waiters: Array<{ resolve: (stream: Stream) => void; reject: (error: Error) => void }> = [];
  readonly #closeWaiters = new Set<{ except: ReadonlySet<Stream>; resolve: () => void }>();
  #sentGoAway = false;
  #failing = false;
  #receivedGoAway: GoAwayInfo | null = null;
  #end: SessionEnd | null = null;
  #resolveClosed!: (end: SessionEnd) => void;

  /** @internal Use `client()` or `server()`. */
  constructor(transport: Duplex, isClient: boolean, options?: SessionOptions) {
    super();
    this.#config = resolveSessionConfig(options);
    this.#transport = transport;
    this.isClient = isClient;
    // The reference client's first stream is 3 and its server treats ids <= 1
    // as used, so a client never opens 1 and a server never accepts it.
    this.#nextLocalId = isClient ? 3 : 2;
    this.#lastRemoteId = isClient ? 0 : 1;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });

    // INTERNAL_ERROR on the wire, not LimitError's REFUSED_STREAM: the GOAWAY
    // ends the session, it does not refuse one stream.
    this.#writer = new Outbound(transport, this.#config.maxControlQueueBytes, (bytes) =>
      this.#fail(
        new LimitError(`the peer does not read: ${bytes} bytes of control frames queued (maxControlQueueBytes)`, ErrorCode.INTERNAL_ERROR),
      ),
    );
    this.#host = {
      scheduleSend: (stream) => this.#writer.ready(stream),
      scheduleWindowUpdate: (stream) => this.#writer.windowUpdate(stream),
      sendReset: (id, code) => this.#sendReset(id, code),
      reserveWindowGrowth: (bytes) => {
        if (this.#windowGrowth + bytes > this.#config.maxSessionWindowGrowth) return false;
        this.#windowGrowth += bytes;
        return true;
      },
      releaseWindowGrowth: (bytes) => {
        this.#windowGrowth -= bytes;
      },
      streamEnded: (stream) => this.#streamEnded(stream),
      minRtt: () => this.#heartbeat.minRtt,
    };
    this.#heartbeat = new Heartbeat({
      enabled: this.#config.heartbeat,
      interval: this.#config.heartbeatInterval,
      tolerance: this.#config.heartbeatTolerance,
      send: (frame) => this.#writer.control(frame),
      onFailure: (error) => this.#fail(error),
    });
    this.#decoder = new FrameDecoder(this.#frameHandler(), { splitData: true });

    // The writer already batches frames per loop turn; Nagle would only hold
    // small frames (a WNDINC, a heartbeat, a keystroke) until the previous
    // segment is acknowledged, which with delayed ACKs costs ~40 ms per round
    // trip. Go, and so the reference peer, sets TCP_NODELAY on every connection.
    const noDelay = (transport as Partial<Pick<Socket, 'setNoDelay'>>).setNoDelay;
    if (typeof noDelay === 'function') noDelay.call(transport, true);

    transport.on('data', this.#onTransportData);
    transport.on('end', this.#onTransportEnd);
    transport.on('close', this.#onTransportEnd);
    transport.on('error', this.#onTransportError);
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      // Streams that waited in the backlog go to the first 'stream' listener.
      if (event === 'stream' && this.#backlog.length > 0) process.nextTick(() => this.#drainBacklogToListeners());
    });

    if (this.#config.heartbeat) this.#heartbeat.start(this.#allocateId());
    if (transport.destroyed) this.#onTransportEnd();
  }

  /** Open streams of both sides (extension streams not counted). */
  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Resolves once no stream is open but those in `except`: at once if none
   * is, and at the latest when the session ends. "Open" is what
   * `openStreams` counts, so streams opened after the call (by either side)
   * are waited for too, and so are streams the peer opened that wait to be
   * accepted. For draining: `goAway()`, then wait for this. Event-driven
   * (`'streamclose'`), no timer; pass a `signal` to stop waiting.
   */
  streamsClosed(options: StreamsClosedOptions = {}): Promise<void> {
    const { except = [], signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidArgumentError('options.signal must be an AbortSignal');
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const kept = new Set(except);
    if (this.#onlyOpen(kept)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#closeWaiters.delete(waiter);
        reject(signal!.reason);
      };
      const waiter = {
        except: kept,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#closeWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Round trip of the last heartbeat in ms, or -1 before the first answer. */
  get rtt(): number {
    return this.#heartbeat.rtt;
  }

  /** Smallest heartbeat round trip in ms so far (the path's, without queueing), or -1 before the first answer. */
  get minRtt(): number {
    return this.#heartbeat.minRtt;
  }

  /** Whether the session has ended. */
  get isClosed(): boolean {
    return this.#end !== null;
  }

  /** Opens a stream at once (zero round trips): data written now follows the SYN. */
  open(options: OpenOptions = {}): Stream {
    if (this.#end) throw new SessionClosedError();
    if (this.#receivedGoAway) throw new GoAwayError('the peer sent GOAWAY and takes no new streams');
    const { type, priority } = options;
    if (type !== undefined && (!Number.isInteger(type) || type < 0 || type >= EXTENSION_TYPE_MIN)) {
      throw new InvalidArgumentError(`stream type must be an integer from 0 to ${EXTENSION_TYPE_MIN - 1}, got ${String(type)}`);
    }
    if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > MAX_U32)) {
      throw new InvalidArgumentError(`stream priority must be an integer from 0 to ${MAX_U32}, got ${String(priority)}`);
    }
    if (this.#localCount >= this.#config.maxStreams) {
      throw new LimitError(`${this.#localCount} streams of this side are open (maxStreams)`);
    }
    const id = this.#allocateId();
    const stream = this.#newStream(id, type ?? 0, priority ?? 0);
    this.#streams.set(id, stream);
    this.#localCount++;
    this.#writer.control(encodeSyn(id, priority, type));
    return stream;
  }

  /** The next stream the peer opens. Rejects with SessionClosedError when the session ends. */
  accept(): Promise<Stream> {
    const queued = this.#backlog.shift();
    if (queued) {
      this.#claimAfterTurn(queued);
      return Promise.resolve(queued);
    }
    if (this.#end) return Promise.reject(new SessionClosedError());
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Sends GOAWAY: the peer may open no more streams; open streams go on. Only the first call sends. */
  goAway(code: ErrorCode = ErrorCode.NO_ERROR, message = ''): void {
    if (this.#end || this.#sentGoAway) return;
    if (!Number.isInteger(code) || code < 0 || code > ErrorCode.CANCEL) {
      throw new InvalidArgumentError(`GOAWAY code must be one of ErrorCode (0 to 7), got ${String(code)}`);
    }
    this.#sentGoAway = true;
    this.#writer.control(encodeGoAway(this.#lastRemoteId, code, Buffer.from(message, 'utf8')));
  }

  /** Sends GOAWAY, ends every stream and closes the transport. */
  close(): void {
    if (this.#end) return;
    this.goAway(ErrorCode.NO_ERROR, 'session closed');
    this.#terminate({ initiator: 'local' });
  }

  // ---- inbound frames ----

  #frameHandler(): FrameHandler {
    // Ids were judged by #judgeHeader before the payload: a frame that gets
    // here names a stream that exists or existed.
    return {
      onHeader: (type, _flags, id) => this.#judgeHeader(type, id),
      onSyn: (id, fin, priority, type) => this.#onSyn(id, fin, priority ?? 0, type ?? 0),
      onData: (id, data, fin) => {
        const stream = this.#streams.get(id);
        if (stream) stream._onData(data, fin);
        else if (this.#heartbeat.owns(id)) this.#heartbeat.onData(id, data);
        else if (!this.#recentResets.has(id)) {
          // The stream is gone here but the peer does not know yet. (A DATA
          // frame in pieces is answered once: the RST marks it recent.)
          this.#sendReset(id, ErrorCode.STREAM_CLOSED);
        }
      },
      onWndInc: (id, increment) => {
        const stream = this.#streams.get(id);
        if (stream) stream._onWindowUpdate(increment);
        else if (this.#heartbeat.owns(id)) this.#heartbeat.onWindowUpdate(id, increment);
        // A stream that is gone needs no more window.
      },
      onRst: (id, code) => {
        const stream = this.#streams.get(id);
        if (stream) stream._onReset(code);
        else if (this.#heartbeat.owns(id)) this.#heartbeat.onReset(id, code);
        // A stream that is gone is already reset.
      },
      onGoAway: (lastStreamId, errorCode, debug) => this.#onGoAway(lastStreamId, errorCode, debug.toString('utf8')),
    };
  }

  /**
   * What a header alone can tell, given the session's state; called before
   * the payload. A peer that sends an invalid header and then nothing must
   * not keep the session waiting for a payload until the heartbeat gives up.
   * The reference ends its session at the header too (for SYN, WNDINC and
   * RST after their few body bytes): docs/muxado.md, "Judging a header".
   */
  #judgeHeader(type: FrameType, id: number): ProtocolError | undefined {
    switch (type) {
      case FrameType.SYN:
        if (this.#isLocalId(id)) return new ProtocolError(`SYN for stream ${id}, an id of this side's parity`);
        if (id <= this.#lastRemoteId) return new ProtocolError(`SYN for stream ${id}, not above the peer's last stream ${this.#lastRemoteId}`);
        return undefined;
      case FrameType.DATA:
      case FrameType.WNDINC:
      case FrameType.RST:
        if (!this.#wasOpened(id)) return new ProtocolError(`${frameNames[type]} for stream ${id}, which was never opened`);
        return undefined;
      default:
        return undefined;
    }
  }

  #onSyn(id: number, fin: boolean, priority: number, type: number): void {
    // Parity and order were judged with the header.
    this.#lastRemoteId = id;
    if (this.#sentGoAway) {
      this.#sendReset(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    if (type >= EXTENSION_TYPE_MIN) {
      if (type !== HEARTBEAT_STREAM_TYPE || !this.#heartbeat.acceptPeerStream(id)) {
        this.#sendReset(id, ErrorCode.STREAM_CLOSED);
      }
      return;
    }
    if (this.#remoteCount >= this.#config.maxStreams) {
      this.#refuse(id, `${this.#remoteCount} streams of the peer are open (maxStreams)`);
      return;
    }
    const hasTaker = this.#waiters.length > 0 || this.listenerCount('stream') > 0;
    if (!hasTaker && this.#backlog.length >= this.#config.acceptBacklog) {
      // Refuse rather than wait: a full backlog must never stall the reader.
      this.#refuse(id, `${this.#backlog.length} streams wait to be accepted (acceptBacklog)`);
      return;
    }
    const stream = this.#newStream(id, type, priority);
    stream.on('error', ignoreUnclaimedError);
    this.#streams.set(id, stream);
    this.#remoteCount++;
    if (fin) stream._onData(EMPTY, true);
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve(stream);
      this.#claimAfterTurn(stream);
    } else if (hasTaker) {
      this.emit('stream', stream);
      stream.off('error', ignoreUnclaimedError);
    } else {
      this.#backlog.push(stream);
    }
  }

  #onGoAway(lastStreamId: number, errorCode: number, message: string): void {
    const info: GoAwayInfo = { lastStreamId, errorCode, message };
    this.#receivedGoAway = info;
    for (const stream of [...this.#streams.values()]) {
      if (this.#isLocalId(stream.id) && stream.id > lastStreamId) {
        stream._abort(new GoAwayError(`the peer sent GOAWAY before it processed stream ${stream.id}`));
      }
    }
    this.emit('goaway', info);
  }

  // ---- transport ----

  readonly #onTransportData = (chunk: Buffer): void => {
    if (this.#end) return;
    try {
      this.#decoder.push(chunk);
    } catch (error) {
      if (error instanceof ProtocolError) this.#protocolError(error.message);
      else this.#fail(new InternalError(`internal error handling a frame: ${String(error)}`, { cause: error }));
      return;
    }
    this.#readThisTurn += chunk.length;
    if (this.#readThisTurn >= READ_BUDGET && !this.#readPaused) {
      // Resumed by an immediate queued after the writer's flush of this turn.
      this.#readPaused = true;
      this.#transport.pause();
      setImmediate(this.#resumeReading);
    } else if (this.#readThisTurn === chunk.length) {
      setImmediate(this.#newTurn);
    }
  };

  readonly #newTurn = (): void => {
    if (!this.#readPaused) this.#readThisTurn = 0;
  };

  readonly #resumeReading = (): void => {
    this.#readPaused = false;
    this.#readThisTurn = 0;
    // Also after the session ended: the rest is discarded as before, and a
    // transport left paused would never read the peer's FIN and close.
    if (!this.#transport.destroyed) this.#transport.resume();
  };

  readonly #onTransportEnd = (): void => {
    if (this.#end) return;
    if (!this.#receivedGoAway) {
      const cut = this.#decoder.truncatedGoAway();
      if (cut) this.#receivedGoAway = { ...cut, message: '' };
    }
    const goAway = this.#receivedGoAway;
    let error: MuxadoError | undefined;
    if (!goAway) error = new TransportError('the transport closed without GOAWAY');
    else if (goAway.errorCode !== ErrorCode.NO_ERROR) {
      error = new GoAwayError(`the peer ended the session with ${errorCodeName(goAway.errorCode)}${goAway.message ? `: ${goAway.message}` : ''}`, goAway.errorCode);
    }
    this.#terminate({ initiator: 'remote', ...(error ? { error } : {}), ...(goAway ? { goAway } : {}) });
  };

  readonly #onTransportError = (cause: Error): void => {
    if (this.#end) return;
    // A peer that said GOAWAY and then closed with our last frames still
    // unread in its socket makes its kernel answer with RST (the reference
    // does this on Close()): it left as it said it would, so end as for EOF
    // (docs/muxado.md, the reference peer's quirks).
    if (this.#receivedGoAway || this.#decoder.truncatedGoAway()) {
      this.#onTransportEnd();
      return;
    }
    this.#terminate({
      initiator: 'remote',
      error: new TransportError(`the transport failed: ${cause.message}`, { cause }),
      ...(this.#receivedGoAway ? { goAway: this.#receivedGoAway } : {}),
    });
  };

  // ---- helpers ----

  #isLocalId(id: number): boolean {
    return (id & 1) === (this.isClient ? 1 : 0);
  }

  /** True if the id was opened at some point, by either side (it may have ended since). */
  #wasOpened(id: number): boolean {
    return this.#isLocalId(id) ? id < this.#nextLocalId : id <= this.#lastRemoteId;
  }

  /** A stream of this session with its window settings (opened here or by the peer). */
  #newStream(id: number, type: number, priority: number): Stream {
    return new Stream(this, this.#host, { id, type, priority, maxWindow: this.#config.maxStreamWindow, windowFloor: this.#config.streamWindowFloor });
  }

  #allocateId(): number {
    const id = this.#nextLocalId;
    if (id > MAX_STREAM_ID) throw new LimitError('all stream ids of this side are used: open a new session');
    this.#nextLocalId += 2;
    return id;
  }

  #sendReset(id: number, code: number): void {
    this.#recentResets.add(id);
    if (this.#recentResets.size > RECENT_RESETS) {
      const oldest = this.#recentResets.values().next().value;
      if (oldest !== undefined) this.#recentResets.delete(oldest);
    }
    this.#writer.control(encodeRst(id, code));
  }

  #refuse(id: number, reason: string): void {
    this.#sendReset(id, ErrorCode.REFUSED_STREAM);
    this.emit('refused', new LimitError(`refused stream ${id}: ${reason}`), id);
  }

  #streamEnded(stream: Stream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    if (this.#isLocalId(stream.id)) this.#localCount--;
    else this.#remoteCount--;
    const queued = this.#backlog.indexOf(stream);
    if (queued >= 0) this.#backlog.splice(queued, 1);
    // Waiters first: a 'streamclose' listener that throws must not strand them.
    for (const waiter of this.#closeWaiters) {
      if (!this.#onlyOpen(waiter.except)) continue;
      this.#closeWaiters.delete(waiter);
      waiter.resolve();
    }
    this.emit('streamclose', stream);
  }

  /** Whether every stream in the table is one of `kept`. O(|kept|): kept sets are small, tables are not. */
  #onlyOpen(kept: ReadonlySet<Stream>): boolean {
    let open = 0;
    for (const stream of kept) if (this.#streams.get(stream.id) === stream) open++;
    return open === this.#streams.size;
  }

  #drainBacklogToListeners(): void {
    while (this.#backlog.length > 0 && this.listenerCount('stream') > 0) {
      const stream = this.#backlog.shift()!;
      this.emit('stream', stream);
      stream.off('error', ignoreUnclaimedError);
    }
  }

  /** The stream was handed to accept()'s caller: after its continuation has run, errors are the application's. */
  #claimAfterTurn(stream: Stream): void {
    setImmediate(() => stream.off('error', ignoreUnclaimedError));
  }

  #protocolError(message: string): void {
    this.#fail(new ProtocolError(message));
  }

  /** Ends the session from this side because of `error`, telling the peer why. */
  #fail(error: MuxadoError): void {
    // #failing: queueing the GOAWAY can overflow the control queue, which fails again.
    if (this.#end || this.#failing) return;
    this.#failing = true;
    // Sent even after goAway() sent one (draining): the peer must learn why
    // the session ends. Receivers, the reference too, take any number of GOAWAYs.
    this.#sentGoAway = true;
    this.#writer.control(encodeGoAway(this.#lastRemoteId, error.errorCode, Buffer.from(error.message, 'utf8')));
    this.#terminate({ initiator: 'local', error, ...(this.#receivedGoAway ? { goAway: this.#receivedGoAway } : {}) });
  }

  #terminate(end: SessionEnd): void {
    if (this.#end) return;
    this.#end = end;
    this.#decoder.stop();
    this.#heartbeat.stop();
    // Queued control frames (the GOAWAY) go out; queued data is dropped.
    this.#writer.close();

    const transport = this.#transport;
    transport.off('data', this.#onTransportData);
    if (!transport.destroyed) {
      transport.end();
      const timer = setTimeout(() => transport.destroy(), end.initiator === 'local' ? this.#config.closeTimeout : 0);
      timer.unref();
      transport.once('close', () => clearTimeout(timer));
    }

    const streamError = end.error
      ? new SessionClosedError(`the session ended: ${end.error.message}`, end.error.errorCode, { cause: end.error })
      : new SessionClosedError(`the session was closed by ${end.initiator === 'local' ? 'this side' : 'the peer'}`);
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#backlog = [];
    for (const stream of streams) stream._abort(streamError);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(streamError);
    const closeWaiters = [...this.#closeWaiters];
    this.#closeWaiters.clear();
    for (const waiter of closeWaiters) waiter.resolve();
    // Settled before the events: a listener that throws must not leave `closed` pending.
    this.#resolveClosed(end);

    for (const stream of streams) this.emit('streamclose', stream);
    if (end.error && this.listenerCount('error') > 0) this.emit('error', end.error);
    this.emit('close', end);
  }
}

/** A session for the side that dialled the transport (odd stream ids). */
export function client(transport: Duplex, options?: SessionOptions): Session {
  return new Session(transport, true, options);
}

/** A session for the side that accepted the transport (even stream ids). */
export function server(transport: Duplex, options?: SessionOptions): Session {
  return new Session(transport, false, options);
}

