/**
 * The conn table's acknowledgements, as the peer receives them on the
 * control stream: when they go out and how they are batched. Conns are
 * stand-ins with the two things the table asks of one (its id and takeAck);
 * what a real conn reports is conn.test.ts's.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ConnTable, type AckEntry } from '../../../src/tunnel/resume/conn-table.js';
import type { PeerReceived, ResumableConn } from '../../../src/tunnel/resume/index.js';

function standIn(id: number, received: PeerReceived): ResumableConn {
  let reported: PeerReceived = { bytes: 0, fin: false };
  const conn = {
    id,
    get receivedBytes() {
      return received.bytes;
    },
    get reportedBytes() {
      return reported.bytes;
    },
    takeAck(): PeerReceived | null {
      if (received.bytes === reported.bytes && received.fin === reported.fin) return null;
      reported = { ...received };
      return reported;
    },
  };
  return conn as unknown as ResumableConn;
}

function tableWithSink(): { table: ConnTable<unknown>; sent: AckEntry[][] } {
  const table = new ConnTable<unknown>(true);
  const sent: AckEntry[][] = [];
  table.setAckSink((acks) => sent.push(acks));
  return { table, sent };
}

describe('ConnTable acknowledgements', () => {
  it('acknowledges the FINs of conns that end in one loop turn in one message, in that turn', async () => {
    const { table, sent } = tableWithSink();
    const conns = [1, 3, 5].map((id) => standIn(id, { bytes: 64, fin: true }));
    for (const conn of conns) table.context.onReceived!(conn, 0);
    expect(sent).toEqual([]);
    await nextTurn();
    expect(sent).toEqual([
      [
        [1, 64, true],
        [3, 64, true],
        [5, 64, true],
      ],
    ]);
  });

  it('holds a small data ack back to batch it, and sends it with the next FIN ack', async () => {
    const { table, sent } = tableWithSink();
    table.context.onReceived!(standIn(1, { bytes: 100, fin: false }), 100);
    await nextTurn();
    expect(sent).toEqual([]);
    table.context.onReceived!(standIn(3, { bytes: 0, fin: true }), 0);
    await nextTurn();
    expect(sent).toEqual([
      [
        [1, 100, false],
        [3, 0, true],
      ],
    ]);
  });

  it('sends nothing while no transport is attached', async () => {
    const { table, sent } = tableWithSink();
    table.context.onReceived!(standIn(1, { bytes: 10, fin: true }), 0);
    table.setAckSink(null);
    await nextTurn();
    expect(sent).toEqual([]);
  });
});
