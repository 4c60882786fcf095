import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EpochBuffer, type EpochBufferConfig, type OverflowPolicy } from '../src/engine/filters/epoch-buffer.ts';

function make(cfg: Partial<EpochBufferConfig> = {}): { b: EpochBuffer; out: number[]; overflow: boolean[] } {
  const out: number[] = [];
  const overflow: boolean[] = [];
  const b = new EpochBuffer({ limitFrames: 1000, limitBytes: 1 << 20, overflow: 'drop-tail', hardLimitBytes: 1 << 21, ...cfg }, { release: (f) => out.push(f[0]! | (f[1]! << 8)), overflow: (on) => overflow.push(on) });
  return { b, out, overflow };
}
const frame = (i: number, len = 60): Uint8Array => {
  const f = new Uint8Array(len);
  f[0] = i & 0xff;
  f[1] = i >> 8;
  return f;
};

test('epochs: nothing leaves before its commit; commit releases closed epochs up to the id, in order; abort drops the named epoch and later ones', () => {
  const { b, out } = make();
  assert.equal(b.openEpoch, 1);
  b.enqueue(frame(1), 0, 0);
  b.enqueue(frame(2), 0, 0);
  assert.equal(b.epochBegin(), 2);
  b.enqueue(frame(3), 0, 0);
  assert.equal(b.epochBegin(), 3);
  b.enqueue(frame(4), 0, 0);
  assert.deepEqual(out, []);
  assert.throws(() => b.commit(3, 0), /still open/);
  assert.equal(b.commit(1, 5), 2);
  assert.deepEqual(out, [1, 2]);
  assert.deepEqual(b.outstanding(), [{ id: 2, frames: 1 }]);
  assert.equal(b.abort(2), 2, 'epoch 2 and the open epoch 3');
  assert.equal(b.openEpoch, 4);
  assert.equal(b.backlogFrames, 0);
  b.enqueue(frame(5), 0, 0);
  b.epochBegin();
  b.commit(4, 0);
  assert.deepEqual(out, [1, 2, 5]);
  assert.equal(b.counters.dropped.aborted, 2);
});

test('overflow policies: drop-tail drops the newest; checkpoint and backpressure signal and keep until the hard bound', () => {
  for (const overflow of ['drop-tail', 'checkpoint', 'backpressure'] as OverflowPolicy[]) {
    const { b, out, overflow: sig } = make({ limitFrames: 3, overflow, hardLimitBytes: 5 * 60 });
    for (let i = 0; i < 8; i++) b.enqueue(frame(i), 0, 0);
    b.epochBegin();
    b.commit(1, 0);
    if (overflow === 'drop-tail') {
      assert.deepEqual(out, [0, 1, 2]);
      assert.equal(b.counters.dropped.overlimit, 5);
      assert.deepEqual(sig, []);
    } else {
      assert.deepEqual(out, [0, 1, 2, 3, 4], `${overflow}: kept to the hard bound`);
      assert.equal(b.counters.dropped.hardLimit, 3);
      assert.deepEqual(sig, [true, false], `${overflow}: on past the limit, off once committed below it`);
    }
  }
});

type Op = { t: 'frame'; len: number } | { t: 'begin' } | { t: 'commit'; back: number } | { t: 'abort'; back: number } | { t: 'all' };

test('property: against a list model, releases are exactly the committed frames in order; every frame is accounted for', () => {
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 300 }).map((len) => ({ t: 'frame' as const, len })) },
    { weight: 2, arbitrary: fc.constant({ t: 'begin' as const }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((back) => ({ t: 'commit' as const, back })) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 4 }).map((back) => ({ t: 'abort' as const, back })) },
    { weight: 1, arbitrary: fc.constant({ t: 'all' as const }) },
  );
  fc.assert(
    fc.property(fc.constantFrom<OverflowPolicy>('drop-tail', 'checkpoint', 'backpressure'), fc.integer({ min: 1, max: 20 }), fc.array(op, { maxLength: 200 }), (overflow, limitFrames, ops) => {
      const { b, out } = make({ limitFrames, limitBytes: 4000, overflow, hardLimitBytes: 6000 });
      // The model: held frames with their epoch; the open epoch id.
      let held: { id: number; epoch: number; len: number }[] = [];
      let open = 1;
      let next = 2;
      const expected: number[] = [];
      let id = 0;
      let dropped = 0;
      for (const o of ops) {
        if (o.t === 'frame') {
          const bytes = held.reduce((s, h) => s + h.len, 0);
          const over = held.length + 1 > limitFrames || bytes + o.len > 4000;
          const keep = !over || (overflow !== 'drop-tail' && bytes + o.len <= 6000);
          assert.equal(b.enqueue(frame(id, o.len), 0, 0), keep);
          if (keep) held.push({ id, epoch: open, len: o.len });
          else dropped++;
          id++;
        } else if (o.t === 'begin') {
          assert.equal(b.epochBegin(), next);
          open = next++;
        } else if (o.t === 'commit') {
          const e = open - o.back;
          if (e < 1) continue;
          b.commit(e, 0);
          expected.push(...held.filter((h) => h.epoch <= e).map((h) => h.id));
          held = held.filter((h) => h.epoch > e);
        } else if (o.t === 'abort') {
          const e = open - o.back;
          dropped += held.filter((h) => h.epoch >= e).length;
          held = held.filter((h) => h.epoch < e);
          b.abort(e);
          open = next++;
        } else {
          b.releaseAll(0);
          expected.push(...held.map((h) => h.id));
          held = [];
        }
        assert.equal(b.backlogFrames, held.length);
        assert.equal(b.openEpoch, open);
      }
      assert.deepEqual(out, expected.map((i) => i & 0xffff));
      const c = b.counters;
      assert.equal(c.enqueued, c.released + c.dropped.overlimit + c.dropped.hardLimit + c.dropped.aborted + b.backlogFrames);
      assert.equal(c.dropped.overlimit + c.dropped.hardLimit + c.dropped.aborted, dropped);
    }),
    { numRuns: 400 },
  );
});
