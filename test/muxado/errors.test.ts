/**
 * Every error the engine raises is a MuxadoError subclass with a stable
 * `code` and the wire code a peer sees (RST or GOAWAY).
 */
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../src/muxado/constants.js';
import {
  ErrorCode,
  GoAwayError,
  HeartbeatRefusedError,
  HeartbeatTimeoutError,
  InternalError,
  InvalidArgumentError,
  LimitError,
  MuxadoError,
  ProtocolError,
  SessionClosedError,
  StreamResetError,
  TransportError,
} from '../../src/muxado/index.js';
import { rawPeerOf } from './helpers.js';

describe('error classes', () => {
  it.each([
    [new ProtocolError('x'), 'ERR_MUXADO_PROTOCOL', ErrorCode.PROTOCOL_ERROR],
    [new StreamResetError(ErrorCode.CANCEL, true), 'ERR_MUXADO_STREAM_RESET', ErrorCode.CANCEL],
    [new SessionClosedError(), 'ERR_MUXADO_SESSION_CLOSED', ErrorCode.NO_ERROR],
    [new GoAwayError('x'), 'ERR_MUXADO_GOAWAY', ErrorCode.REFUSED_STREAM],
    [new HeartbeatTimeoutError(13_000), 'ERR_MUXADO_HEARTBEAT_TIMEOUT', ErrorCode.INTERNAL_ERROR],
    [new HeartbeatRefusedError(ErrorCode.STREAM_CLOSED), 'ERR_MUXADO_HEARTBEAT_REFUSED', ErrorCode.PROTOCOL_ERROR],
    [new LimitError('x'), 'ERR_MUXADO_LIMIT', ErrorCode.REFUSED_STREAM],
    [new InvalidArgumentError('x'), 'ERR_MUXADO_INVALID_ARGUMENT', ErrorCode.INTERNAL_ERROR],
    [new TransportError('x'), 'ERR_MUXADO_TRANSPORT', ErrorCode.INTERNAL_ERROR],
    [new InternalError('x'), 'ERR_MUXADO_INTERNAL', ErrorCode.INTERNAL_ERROR],
  ] as const)('%s has code %s and wire code %i', (error, code, errorCode) => {
    expect(error).toBeInstanceOf(MuxadoError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(error.constructor.name);
    expect(error.code).toBe(code);
    expect(error.errorCode).toBe(errorCode);
  });

  it('InternalError keeps what was thrown as its cause', () => {
    const cause = new TypeError('boom');
    expect(new InternalError('handling a frame failed', { cause }).cause).toBe(cause);
  });
});

describe('InternalError: handling a well-formed frame threw', () => {
  it('ends the session with GOAWAY(INTERNAL_ERROR), the thrown error as cause', async () => {
    const { session, peer } = await rawPeerOf('server');
    const thrown = new Error('the application listener broke');
    session.on('stream', () => {
      throw thrown;
    });
    peer.send({ type: FrameType.SYN, streamId: 3, fin: false });
    const end = await session.closed;
    expect(end.initiator).toBe('local');
    expect(end.error).toBeInstanceOf(InternalError);
    expect(end.error).toMatchObject({ code: 'ERR_MUXADO_INTERNAL', errorCode: ErrorCode.INTERNAL_ERROR });
    expect(end.error?.cause).toBe(thrown);
    expect(await peer.nextOf(FrameType.GOAWAY)).toMatchObject({ errorCode: ErrorCode.INTERNAL_ERROR });
    await peer.waitEnded();
  });
});
