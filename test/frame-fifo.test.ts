import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameFifo } from '../src/engine/frame-fifo.ts';

test('property: FrameFifo behaves as a deque of (frame, meta, at) under any push/shift/pop/clear sequence, across compactions', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.constant('push'), fc.constant('push'), fc.constant('push'), fc.constant('shift'), fc.constant('pop'), fc.constant('clear')), { maxLength: 20_000 }), (ops) => {
      const q = new FrameFifo();
      const model: [number, number, number][] = [];
      let id = 0;
      for (const op of ops) {
        if (op === 'push') {
          const f = new Uint8Array(1 + (id % 7));
          q.push(f, id, id * 2);
          model.push([f.length, id, id * 2]);
          id++;
        } else if (op === 'shift' && model.length > 0) {
          const [len, meta, at] = model.shift()!;
          assert.equal(q.headAt(), at);
          assert.equal(q.shift().length, len);
          assert.equal(q.lastMeta, meta);
          assert.equal(q.lastAt, at);
        } else if (op === 'pop' && model.length > 0) {
          const [len, meta, at] = model.pop()!;
          assert.equal(q.pop().length, len);
          assert.deepEqual([q.lastMeta, q.lastAt], [meta, at]);
        } else if (op === 'clear') {
          const seen: number[] = [];
          assert.equal(q.clear((_f, m) => seen.push(m)), model.length);
          assert.deepEqual(seen, model.map((m) => m[1]));
          model.length = 0;
        }
        assert.equal(q.length, model.length);
        assert.equal(q.bytes, model.reduce((s, m) => s + m[0], 0));
      }
    }),
    { numRuns: 50 },
  );
});
