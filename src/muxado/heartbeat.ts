import { performance } from 'node:perf_hooks';
import { HEARTBEAT_PRIORITY, HEARTBEAT_STREAM_TYPE, INITIAL_WINDOW } from './constants.js';
import { HeartbeatRefusedError, HeartbeatTimeoutError, type MuxadoError } from './errors.js';
import { encodeDataHeader, encodeSyn, encodeWndInc } from './frame.js';

/**
 * Heartbeats sent back to back at start, each when the last is answered: the
 * first round trip of a session runs cold code in both peers and meets their
 * start-up work, and window growth trusts the smallest round trip.
 */
const STARTUP_BEATS = 4;

export interface HeartbeatOptions {
  enabled: boolean;
  interval: number;
  tolerance: number;
  /** Queues a control frame. */
  send(frame: Buffer): void;
  /** The peer stopped answering, or refused our heartbeat stream. */
  onFailure(error: MuxadoError): void;
}

/**
 * The heartbeat extension. Each side opens one stream of type 0xFFFFFEFF and
 * writes a 4-byte id on it every interval; the other side echoes every byte
 * it reads on the peer's heartbeat stream. Silence for interval + tolerance
 * ends the session. Heartbeat frames travel as control frames, ahead of data,
 * so a busy session does not look dead. One coarse timer per session.
 */
export class Heartbeat {
  readonly #options: HeartbeatOptions;
  #localId = 0;
  #peerId = 0;
  #timer: NodeJS.Timeout | null = null;
  #sendWindow = INITIAL_WINDOW;
  #echoWindow = INITIAL_WINDOW;
  #counter = 0;
  #outstandingSince = -1;
  #echoBytes = 0;
  #lastAnswer = 0;
  #rtt = -1;
  #minRtt = -1;
  #samples = 0;

  constructor(options: HeartbeatOptions) {
    this.#options = options;
  }

  /** Round trip of the last answered heartbeat in ms, or -1 before the first. */
  get rtt(): number {
    return this.#rtt;
  }

  /**
   * Smallest round trip answered so far in ms, or -1 before the first. Under
   * load a round trip also measures the queues in both event loops; the
   * smallest one is the path's, which is what window growth goes by.
   */
  get minRtt(): number {
    return this.#minRtt;
  }

  /**
   * Opens our heartbeat stream with the given id, sends the first heartbeat
   * at once (so a round trip is known after one, not after an interval: the
   * reference just echoes, whenever it comes) and starts the clock.
   */
  start(localId: number): void {
    if (!this.#options.enabled) return;
    this.#localId = localId;
    this.#options.send(encodeSyn(localId, HEARTBEAT_PRIORITY, HEARTBEAT_STREAM_TYPE));
    this.#lastAnswer = performance.now();
    this.#beat(this.#lastAnswer);
    this.#timer = setInterval(this.#tick, this.#options.interval);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The peer opened its heartbeat stream. Returns false if it already had one. */
  acceptPeerStream(id: number): boolean {
    if (this.#peerId !== 0) return false;
    this.#peerId = id;
    return true;
  }

  owns(id: number): boolean {
    return id !== 0 && (id === this.#localId || id === this.#peerId);
  }

  onData(id: number, data: Buffer): void {
    if (data.length === 0) return;
    if (id === this.#peerId) {
      // Echo what arrives as it arrives, within the window the peer gave us.
      const n = Math.min(data.length, this.#echoWindow);
      if (n > 0) {
        const frame = Buffer.allocUnsafe(8 + n);
        encodeDataHeader(id, n, false).copy(frame, 0);
        data.copy(frame, 8, 0, n);
        this.#echoWindow -= n;
        this.#options.send(frame);
      }
      this.#options.send(encodeWndInc(id, data.length));
      return;
    }
    // An answer on our own stream: every 4 bytes is one heartbeat echoed.
    this.#options.send(encodeWndInc(id, data.length));
    this.#echoBytes += data.length;
    if (this.#echoBytes >= 4) {
      this.#echoBytes %= 4;
      const now = performance.now();
      if (this.#outstandingSince >= 0) {
        this.#rtt = now - this.#outstandingSince;
        if (this.#minRtt < 0 || this.#rtt < this.#minRtt) this.#minRtt = this.#rtt;
        this.#samples++;
      }
      this.#outstandingSince = -1;
      this.#lastAnswer = now;
      if (this.#samples < STARTUP_BEATS && this.#timer !== null) this.#beat(now);
    }
  }

  onWindowUpdate(id: number, increment: number): void {
    if (id === this.#localId) this.#sendWindow += increment;
    else this.#echoWindow += increment;
  }

  onReset(id: number, errorCode: number): void {
    if (id === this.#localId) {
      // Without its heartbeat stream a dead peer would go unnoticed, and a
      // hostile one could switch liveness checks off: end the session, as
      // the reference does when its heartbeat stream fails.
      this.stop();
      this.#localId = -1;
      this.#options.onFailure(new HeartbeatRefusedError(errorCode));
    } else {
      this.#peerId = -1;
    }
  }

  readonly #tick = (): void => {
    const now = performance.now();
    const silent = now - this.#lastAnswer;
    if (silent > this.#options.interval + this.#options.tolerance) {
      this.stop();
      this.#options.onFailure(new HeartbeatTimeoutError(Math.round(silent)));
      return;
    }
    this.#beat(now);
  };

  /** Sends the next heartbeat id, unless one is still unanswered. */
  #beat(now: number): void {
    if (this.#outstandingSince >= 0 || this.#sendWindow < 4) return;
    const frame = Buffer.allocUnsafe(12);
    encodeDataHeader(this.#localId, 4, false).copy(frame, 0);
    frame.writeUInt32BE(this.#counter, 8);
    this.#counter = (this.#counter + 1) >>> 0;
    this.#sendWindow -= 4;
    this.#outstandingSince = now;
    this.#options.send(frame);
  }
}
