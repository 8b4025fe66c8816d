import { describe, expect, it } from 'vitest';
import { decideResume, resumeEntries, type ConnSnapshot, type ResumeMessage } from '../../../src/tunnel/resume/index.js';

/** A conn snapshot: fresh unless told otherwise. */
function conn(id: number, state: Partial<Omit<ConnSnapshot, 'id'>> = {}): ConnSnapshot {
  return { id, sentBytes: 0, ackedBytes: 0, sentFin: false, finAcked: false, receivedBytes: 0, finReceived: false, ...state };
}

const client = (conns: ConnSnapshot[], highestSeen = 0) => ({ isClient: true, conns, highestSeen });
const server = (conns: ConnSnapshot[], highestSeen = 0) => ({ isClient: false, conns, highestSeen });
const message = (conns: ResumeMessage['conns'], highestSeen = 0): ResumeMessage => ({ highestSeen, conns });
const entry = (id: number, receivedBytes = 0, finReceived = false) => ({ id, receivedBytes, finReceived });

describe('resumeEntries', () => {
  it('lists every conn with what it received', () => {
    expect(resumeEntries([conn(3, { receivedBytes: 10, sentBytes: 99 }), conn(4, { receivedBytes: 7, finReceived: true })])).toEqual([
      { id: 3, receivedBytes: 10, finReceived: false },
      { id: 4, receivedBytes: 7, finReceived: true },
    ]);
    expect(resumeEntries([])).toEqual([]);
  });
});

describe('decideResume: conns the peer lists', () => {
  it('attach, with what the peer received as the replay point', () => {
    const local = client([conn(3, { sentBytes: 100, ackedBytes: 40, receivedBytes: 5 })], 0);
    expect(decideResume(local, message([entry(3, 60)], 3))).toEqual([{ action: 'attach', id: 3, peer: { bytes: 60, fin: false } }]);
  });

  it('attach when only one FIN is through (ours received, theirs not)', () => {
    const local = client([conn(3, { sentBytes: 100, ackedBytes: 40, sentFin: true })], 0);
    expect(decideResume(local, message([entry(3, 100, true)], 3))).toEqual([{ action: 'attach', id: 3, peer: { bytes: 100, fin: true } }]);
  });

  it('attach when only the peer FIN is through (theirs received, ours not)', () => {
    const local = client([conn(3, { sentBytes: 100, sentFin: true, finReceived: true })], 0);
    expect(decideResume(local, message([entry(3, 100, false)], 3))).toEqual([{ action: 'attach', id: 3, peer: { bytes: 100, fin: false } }]);
  });

  it('complete when both FINs are through, with the ack to apply', () => {
    const local = server([conn(3, { sentBytes: 8, ackedBytes: 0, sentFin: true, receivedBytes: 4, finReceived: true })], 3);
    expect(decideResume(local, message([entry(3, 8, true)], 0))).toEqual([{ action: 'complete', id: 3, peer: { bytes: 8, fin: true } }]);
  });

  it('both sides reach the same verdicts from each other\'s messages', () => {
    const a = [conn(1, { sentBytes: 10, sentFin: true, receivedBytes: 20, finReceived: true }), conn(3, { sentBytes: 5, receivedBytes: 7 })];
    const b = [conn(1, { sentBytes: 20, sentFin: true, receivedBytes: 10, finReceived: true }), conn(3, { sentBytes: 7, receivedBytes: 2 })];
    const fromA = message(resumeEntries(a), 0);
    const fromB = message(resumeEntries(b), 3);
    const verdictsA = decideResume(client(a, 0), fromB).map((d) => [d.id, d.action]);
    const verdictsB = decideResume(server(b, 3), fromA).map((d) => [d.id, d.action]);
    expect(verdictsA).toEqual([[1, 'complete'], [3, 'attach']]);
    expect(verdictsB).toEqual(verdictsA);
  });

  it('refuses a replay point below what the peer acknowledged or above what was sent', () => {
    const local = client([conn(3, { sentBytes: 100, ackedBytes: 40 })]);
    expect(() => decideResume(local, message([entry(3, 39)], 3))).toThrow(expect.objectContaining({ code: 'ERR_MUXTUN_PROTOCOL' }));
    expect(() => decideResume(local, message([entry(3, 101)], 3))).toThrow(/received 101 bytes of conn 3/);
  });

  it('refuses a FIN the peer cannot have: not sent, or not at the end', () => {
    expect(() => decideResume(client([conn(3, { sentBytes: 10 })]), message([entry(3, 10, true)], 3))).toThrow(/FIN of conn 3/);
    expect(() => decideResume(client([conn(3, { sentBytes: 10, sentFin: true })]), message([entry(3, 9, true)], 3))).toThrow(/FIN of conn 3/);
  });

  it('refuses a FIN the peer acknowledged before and now lacks', () => {
    const local = client([conn(3, { sentBytes: 10, ackedBytes: 10, sentFin: true, finAcked: true })]);
    expect(() => decideResume(local, message([entry(3, 10, false)], 3))).toThrow(/lacks the FIN of conn 3/);
  });
});

describe('decideResume: conns the peer does not list', () => {
  it('reopen ours the peer never saw (above its watermark)', () => {
    const local = client([conn(5, { sentBytes: 300, sentFin: true }), conn(7)]);
    expect(decideResume(local, message([], 3))).toEqual([
      { action: 'reopen', id: 5 },
      { action: 'reopen', id: 7 },
    ]);
  });

  it('server side: reopen its own even ids above the client watermark', () => {
    expect(decideResume(server([conn(6, { sentBytes: 1 })]), message([], 4))).toEqual([{ action: 'reopen', id: 6 }]);
  });

  it('refuses to reopen a conn the peer took part in: it saw it', () => {
    for (const state of [{ ackedBytes: 1, sentBytes: 1 }, { finAcked: true, sentFin: true }, { receivedBytes: 1 }, { finReceived: true }]) {
      expect(() => decideResume(client([conn(5, state)]), message([], 3))).toThrow(/above the peer's watermark 3/);
    }
  });

  it('complete when the peer forgot it after both FINs went through (its last ack was lost)', () => {
    // Bytes still unacknowledged: the peer completed, so it received them.
    const local = client([conn(3, { sentBytes: 50, ackedBytes: 20, sentFin: true, receivedBytes: 9, finReceived: true })]);
    expect(decideResume(local, message([], 3))).toEqual([{ action: 'complete', id: 3, peer: { bytes: 50, fin: true } }]);
  });

  it('complete also when only the ack of our FIN was missing', () => {
    const local = client([conn(3, { sentBytes: 50, ackedBytes: 50, sentFin: true, receivedBytes: 9, finReceived: true })]);
    expect(decideResume(local, message([], 5))).toEqual([{ action: 'complete', id: 3, peer: { bytes: 50, fin: true } }]);
  });

  it('abort when the peer forgot it before its FIN reached us: it aborted it', () => {
    const local = client([conn(3, { sentBytes: 50, ackedBytes: 50, sentFin: true, finAcked: true, receivedBytes: 9 })]);
    expect(decideResume(local, message([], 3))).toEqual([{ action: 'abort', id: 3, reason: expect.stringMatching(/before its FIN/) }]);
  });

  it('abort when the peer forgot it before our FIN was sent', () => {
    const local = client([conn(3, { sentBytes: 50, ackedBytes: 50, receivedBytes: 9, finReceived: true })]);
    expect(decideResume(local, message([], 3))).toEqual([{ action: 'abort', id: 3, reason: expect.stringMatching(/before our FIN/) }]);
  });

  it("the peer's own conns it does not list were forgotten by it, whatever the watermark", () => {
    // Id 4 is the server's (the peer's): never a reopen on our side.
    const local = client([conn(4, { receivedBytes: 3 })]);
    expect(decideResume(local, message([], 100))).toEqual([{ action: 'abort', id: 4, reason: expect.any(String) }]);
  });

  it('at the watermark exactly, the peer saw it', () => {
    expect(decideResume(client([conn(5)]), message([], 5))).toEqual([{ action: 'abort', id: 5, reason: expect.any(String) }]);
  });
});

describe('decideResume: conns only the peer holds', () => {
  it('await-reopen for the peer\'s conns above our watermark: it will open them anew', () => {
    expect(decideResume(server([], 3), message([entry(5), entry(7, 0)]))).toEqual([
      { action: 'await-reopen', id: 5 },
      { action: 'await-reopen', id: 7 },
    ]);
  });

  it('unknown for the peer\'s conns we saw and forgot, and for ours we forgot', () => {
    expect(decideResume(server([], 5), message([entry(5, 10), entry(2, 3, true)]))).toEqual([
      { action: 'unknown', id: 5 },
      { action: 'unknown', id: 2 },
    ]);
    expect(decideResume(client([], 0), message([entry(3, 1)]))).toEqual([{ action: 'unknown', id: 3 }]);
  });

  it('local conns first, in their order, then the peer-only ones', () => {
    const local = client([conn(9, { sentBytes: 1 }), conn(3)], 4);
    const peer = message([entry(4), entry(3), entry(6)], 3);
    expect(decideResume(local, peer).map((d) => [d.id, d.action])).toEqual([
      [9, 'reopen'],
      [3, 'attach'],
      [4, 'unknown'],
      [6, 'await-reopen'],
    ]);
  });
});

describe('decideResume: malformed messages (ERR_MUXTUN_PROTOCOL)', () => {
  const protocol = expect.objectContaining({ code: 'ERR_MUXTUN_PROTOCOL' });
  const bad: Array<[string, unknown]> = [
    ['a negative watermark', { highestSeen: -1, conns: [] }],
    ['a fractional watermark', { highestSeen: 1.5, conns: [] }],
    ['conns not a list', { highestSeen: 0, conns: {} }],
    ['a string id', { highestSeen: 0, conns: [{ id: '3', receivedBytes: 0, finReceived: false }] }],
    ['a negative count', { highestSeen: 0, conns: [{ id: 3, receivedBytes: -1, finReceived: false }] }],
    ['an unsafe count', { highestSeen: 0, conns: [{ id: 3, receivedBytes: 2 ** 53, finReceived: false }] }],
    ['fin not a boolean', { highestSeen: 0, conns: [{ id: 3, receivedBytes: 0, finReceived: 1 }] }],
    ['a conn listed twice', { highestSeen: 0, conns: [entry(3), entry(3)] }],
  ];
  for (const [what, peer] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => decideResume(client([]), peer as ResumeMessage)).toThrow(protocol);
    });
  }
});
