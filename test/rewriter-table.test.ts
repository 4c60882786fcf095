import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FlowKey, fillFlowKey } from '../src/packet/flow-key.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { RewriterTable } from '../src/engine/filters/rewriter-table.ts';
import { buildFrame } from './helpers/build-packet.ts';

const key = (port: number): FlowKey => {
  const k = new FlowKey();
  fillFlowKey(new PacketView().decode(buildFrame({ proto: 'tcp', srcPort: port, dstPort: 80 })), k);
  return k;
};

test('lru: at the bound the least recently used goes; touch keeps one; qemu: the whole table is cleared', () => {
  const t = new RewriterTable(3, true);
  const a = t.create(key(1)).conn;
  t.create(key(2));
  t.create(key(3));
  t.touch(a);
  assert.equal(t.create(key(4)).made, 'evicted');
  assert.equal(t.size, 3);
  assert.equal(t.find(key(2)), null);
  assert.equal(t.find(key(1)), a);
  const q = new RewriterTable(2, false);
  q.create(key(1));
  q.create(key(2));
  assert.equal(q.create(key(3)).made, 'reset');
  assert.equal(q.size, 1);
  assert.deepEqual([...q].map((c) => c.key.portA === 3 || c.key.portB === 3), [true]);
});

test('property (lru): the table never passes its bound, and holds exactly the most recently used connections', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 200 }), (max, ports) => {
      const t = new RewriterTable(max, true);
      const order: number[] = []; // most recent last
      for (const p of ports) {
        const k = key(p);
        const c = t.find(k);
        if (c === null) t.create(k);
        else t.touch(c);
        const i = order.indexOf(p);
        if (i >= 0) order.splice(i, 1);
        order.push(p);
        assert.ok(t.size <= max);
      }
      const kept = order.slice(-max).sort((a, b) => a - b);
      const inTable = [...t].map((c) => (c.key.portA === 80 ? c.key.portB : c.key.portA)).sort((a, b) => a - b);
      assert.deepEqual(inTable, kept);
    }),
  );
});
