// The compare engine's ring-buffer queue against an array model: every
// operation, growth past its first capacity, and the emptiness notifications
// that move a connection between its table's LRU lists.

import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { ComparePacket } from '../src/engine/colo-compare/compare-packet.ts';
import { PacketQueue } from '../src/engine/colo-compare/packet-queue.ts';

function pkt(seq: number, arrival: number): ComparePacket {
  const p = new ComparePacket();
  p.tcpSeq = seq >>> 0;
  p.arrival = arrival;
  return p;
}

type Op = { t: 'push' | 'unshift' | 'insert'; seq: number } | { t: 'shift' | 'drain' } | { t: 'removeAt'; i: number };

test('property: PacketQueue behaves as an array, in sequence order where asked, and reports emptiness changes', () => {
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ t: fc.constantFrom<'push' | 'unshift' | 'insert'>('push', 'unshift', 'insert'), seq: fc.integer({ min: 0, max: 50 }) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constantFrom<'shift' | 'drain'>('shift', 'shift', 'shift', 'drain') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant<'removeAt'>('removeAt'), i: fc.nat(40) }) },
  );
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
      let changes = 0;
      const q = new PacketQueue({ queueEmptinessChanged: () => changes++ });
      const model: ComparePacket[] = [];
      let expectChanges = 0;
      let arrival = 0;
      for (const op of ops) {
        const wasEmpty = model.length === 0;
        if (op.t === 'push' || op.t === 'unshift' || op.t === 'insert') {
          const p = pkt(op.seq, arrival++);
          if (op.t === 'push') {
            q.push(p);
            model.push(p);
          } else if (op.t === 'unshift') {
            q.unshift(p);
            model.unshift(p);
          } else {
            q.insertBySeq(p);
            // After the last packet whose sequence is not after p's (equal sequences keep arrival order).
            let i = model.length;
            while (i > 0 && ((model[i - 1]!.tcpSeq - p.tcpSeq) | 0) > 0) i--;
            model.splice(i, 0, p);
          }
        } else if (op.t === 'shift') {
          assert.equal(q.shift(), model.shift());
        } else if (op.t === 'drain') {
          assert.deepEqual(q.drain(), model.splice(0));
        } else if (op.t === 'removeAt' && model.length > 0) {
          const i = op.i % model.length;
          assert.equal(q.removeAt(i), model.splice(i, 1)[0]);
        }
        if (wasEmpty !== (model.length === 0)) expectChanges++;
        assert.equal(q.length, model.length);
        assert.equal(q.front(), model[0]);
        for (let i = 0; i < model.length; i++) assert.equal(q.at(i), model[i]);
        assert.equal(q.at(model.length), undefined);
      }
      assert.equal(changes, expectChanges);
    }),
  );
});

test('PacketQueue: oldestMs is the minimum over the queue, whatever its order', () => {
  const q = new PacketQueue();
  assert.equal(q.oldestMs(), Infinity);
  for (const [seq, t] of [[30, 5], [10, 9], [20, 2]] as const) {
    const p = pkt(seq, 0);
    p.createdMs = t;
    q.insertBySeq(p);
  }
  assert.deepEqual([q.at(0)!.tcpSeq, q.at(1)!.tcpSeq, q.at(2)!.tcpSeq], [10, 20, 30]);
  assert.equal(q.oldestMs(), 2);
});
