import { EventEmitter } from 'node:events';
import type { Stream } from '../muxado/index.js';
import { MAX_CONTROL_MESSAGE, type ControlMessage } from './control-messages.js';
import { TunnelError, TunnelErrorCode } from './errors.js';

interface ControlChannelEvents<In> {
  message: [message: In];
  /** The peer sent something that is not a control message it may send; the caller ends the session. */
  invalid: [error: TunnelError];
  /** The control stream ended or failed. */
  close: [];
}

/**
 * Length-prefixed JSON messages over the control stream, every size
 * bounded. Typed by direction: `In` is what the peer may send (checked by
 * `validate`), `Out` what this side sends, so `switch (message.type)` narrows.
 */
export class ControlChannel<In extends ControlMessage, Out extends ControlMessage> extends EventEmitter<ControlChannelEvents<In>> {
  readonly stream: Stream;
  readonly #validate: (value: unknown) => In | string;
  #pending: Buffer = Buffer.alloc(0);
  #failed = false;
  #holding = false;

  constructor(stream: Stream, validate: (value: unknown) => In | string) {
    super();
    this.stream = stream;
    this.#validate = validate;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', () => {});
    stream.on('close', () => this.emit('close'));
  }

  send(message: Out): void {
    if (this.stream.destroyed || this.stream.writableEnded) return;
    const body = Buffer.from(JSON.stringify(message), 'utf8');
    const frame = Buffer.allocUnsafe(4 + body.length);
    frame.writeUInt32BE(body.length, 0);
    body.copy(frame, 4);
    this.stream.write(frame);
  }

  /**
   * Stops emitting messages until {@link release}: what arrives meanwhile
   * waits (the stream is paused, so the peer's window bounds it). For
   * handing the channel from one listener to another across an await: the
   * server's resume-state follows its 'resumed' at once, often in the same
   * chunk (always over a WebSocket), and emitted before the resume exchange
   * listens it was lost.
   */
  hold(): void {
    this.#holding = true;
    this.stream.pause();
  }

  /** Emits what {@link hold} kept, then goes on as before. */
  release(): void {
    if (!this.#holding) return;
    this.#holding = false;
    this.#onData(Buffer.alloc(0));
    if (!this.#holding) this.stream.resume();
  }

  #onData(chunk: Buffer): void {
    if (this.#failed) return;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (!this.#holding && this.#pending.length >= 4) {
      const length = this.#pending.readUInt32BE(0);
      if (length > MAX_CONTROL_MESSAGE) {
        this.#fail(`a control message of ${length} bytes exceeds the limit of ${MAX_CONTROL_MESSAGE}`);
        return;
      }
      if (this.#pending.length < 4 + length) return;
      const body = this.#pending.subarray(4, 4 + length);
      this.#pending = this.#pending.subarray(4 + length);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        this.#fail('a control message is not valid JSON');
        return;
      }
      const message = this.#validate(parsed);
      if (typeof message === 'string') {
        this.#fail(message);
        return;
      }
      this.emit('message', message);
      if (this.#failed || this.stream.destroyed) return;
    }
  }

  #fail(reason: string): void {
    this.#failed = true;
    this.#pending = Buffer.alloc(0);
    this.emit('invalid', new TunnelError(TunnelErrorCode.PROTOCOL, `bad control message: ${reason}`));
  }
}
