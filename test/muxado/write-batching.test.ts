/**
 * How the session's writer hands frames to its transport (issue 16): a small
 * batch (an interactive write, a SYN with its first bytes) is one buffer in
 * one write(), so the TLS socket under it takes one plain write instead of a
 * corked writev; a large batch is corked and written buffer by buffer, the
 * application's payloads passed on without a copy.
 */
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import { client, type Session } from '../../src/muxado/index.js';
import { currentScope } from '../support/scope.js';
import { decodeFrames } from './codec-helpers.js';

/** A transport that keeps every write call as the session made it: one buffer, or a writev's list. */
class RecordingTransport extends Duplex {
  readonly calls: Buffer[][] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.calls.push([chunk]);
    callback();
    this.emit('recorded');
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.calls.push(chunks.map(({ chunk }) => chunk));
    callback();
    this.emit('recorded');
  }
}

function sessionOn(transport: RecordingTransport): Session {
  const session = client(transport, { heartbeat: false });
  currentScope().add(() => session.close());
  return session;
}

describe('session: write batching', () => {
  it('writes a small batch (SYN and 64 bytes of DATA) as one buffer in one call', async () => {
    const transport = new RecordingTransport();
    const session = sessionOn(transport);
    const stream = await session.open();
    stream.on('error', () => {}); // the session's close at the end fails it
    const payload = Buffer.alloc(64, 7);
    stream.write(payload);
    await once(transport, 'recorded');

    expect(transport.calls).toHaveLength(1);
    expect(transport.calls[0]).toHaveLength(1);
    const { frames, rest } = decodeFrames(transport.calls[0]![0]!);
    expect(rest).toBe(0);
    expect(frames.map((frame) => frame.type)).toEqual([FrameType.SYN, FrameType.DATA]);
    const data = frames[1]!;
    expect(data.type === FrameType.DATA && data.data.equals(payload)).toBe(true);
  });

  it('writes a large batch corked, buffer by buffer, with the application payload not copied', async () => {
    const transport = new RecordingTransport();
    const session = sessionOn(transport);
    const stream = await session.open();
    stream.on('error', () => {}); // the session's close at the end fails it
    const payload = Buffer.alloc(48 * 1024, 9);
    stream.write(payload);
    await once(transport, 'recorded');

    const buffers = transport.calls.flat();
    expect(transport.calls[0]!.length).toBeGreaterThan(1);
    // Up to the stream's first window, the frames' payloads are views of the application's buffer.
    expect(buffers.filter((buffer) => buffer.buffer === payload.buffer).length).toBeGreaterThanOrEqual(3);
    const { frames, rest } = decodeFrames(Buffer.concat(buffers));
    expect(rest).toBe(0);
    const sent = Buffer.concat(frames.flatMap((frame) => (frame.type === FrameType.DATA ? [frame.data] : [])));
    expect(sent.equals(payload)).toBe(true);
  });
});
