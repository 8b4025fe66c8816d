/**
 * The dial result of DYNAMIC and reverse dynamic streams: its framing, what
 * a peer may send, and how a failed dial is sorted into the SOCKS reply the
 * user's client gets.
 */
import { describe, expect, it } from 'vitest';
import { classifyDialError, encodeDialReply, toDialReply } from '../../src/tunnel/dial-reply.js';
import { TunnelError } from '../../src/tunnel/errors.js';
import { isRemoteForwardHeader } from '../../src/tunnel/stream-header.js';
import { validateClientMessage } from '../../src/tunnel/control-messages.js';
import { hex } from '../support/bytes.js';

describe('dial result', () => {
  it('is framed like a stream header: u16 length, JSON', () => {
    expect(encodeDialReply({ ok: true })).toEqual(Buffer.concat([hex('000b'), Buffer.from('{"ok":true}')]));
    const refused = encodeDialReply({ ok: false, error: 'refused', message: 'no' });
    expect(JSON.parse(refused.subarray(2).toString())).toEqual({ error: 'refused', message: 'no' });
    expect(refused.readUInt16BE(0)).toBe(refused.length - 2);
  });

  it.each([
    [{ ok: true }, { ok: true }],
    [{ error: 'policy', message: 'not in --allow-local' }, { ok: false, error: 'policy', message: 'not in --allow-local' }],
    [{ error: 'teapot', message: 'x' }, null],
    [{ error: 'refused' }, null],
    [{ ok: 'yes' }, null],
    [[], null],
    [null, null],
    [{ error: 'failed', message: 'x'.repeat(1001) }, null],
  ])('%j from a peer reads as %j', (raw, reply) => {
    expect(toDialReply(raw)).toEqual(reply);
  });

  it.each([
    ['ECONNREFUSED', 'refused'],
    ['ENOTFOUND', 'not-found'],
    ['EAI_AGAIN', 'not-found'],
    ['EHOSTUNREACH', 'unreachable'],
    ['ENETUNREACH', 'unreachable'],
    ['ETIMEDOUT', 'timeout'],
    ['EPERM', 'failed'],
  ])('a dial failing with %s is %s', (code, failure) => {
    expect(classifyDialError(Object.assign(new Error(code), { code }))).toBe(failure);
  });

  it('dialTarget\'s own timeout (ERR_MUXTUN_DIAL) is a timeout', () => {
    expect(classifyDialError(new TunnelError('ERR_MUXTUN_DIAL', 'no answer within 10000 ms'))).toBe('timeout');
  });
});

describe('reverse dynamic on the wire', () => {
  it('a REMOTE_FORWARD header may name a target, whole or not at all', () => {
    expect(isRemoteForwardHeader({ forward: 0, peer: 'p', host: 'db', port: 5432, conn: 2 })).toBe(true);
    expect(isRemoteForwardHeader({ forward: 0, peer: 'p', host: 'db' })).toBe(false);
    expect(isRemoteForwardHeader({ forward: 0, peer: 'p', port: 0, host: 'db' })).toBe(false);
    expect(isRemoteForwardHeader({ forward: 0, peer: 'p', host: '', port: 80 })).toBe(false);
  });

  it('listen takes dynamic: true or false, nothing else', () => {
    expect(validateClientMessage({ type: 'listen', id: 0, bindHost: '0.0.0.0', port: 0, dynamic: true })).toMatchObject({ dynamic: true });
    expect(validateClientMessage({ type: 'listen', id: 0, bindHost: '0.0.0.0', port: 0, dynamic: 'yes' })).toBe('malformed listen request');
  });
});
