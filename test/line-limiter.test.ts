import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineLimiter } from '../src/engine/line-limiter.ts';

test('a storm of one kind shows one line, then one summary per window', () => {
  const l = new LineLimiter(1000);
  const shown: string[] = [];
  for (let t = 0; t < 10_000; t += 1) shown.push(...l.offer('ep:ERR_CONNECT', `refused #${t}`, t));
  shown.push(...l.flush(10_000, true));
  // 10 windows: each opens with a line; each but the first also carries the previous window's summary; flush adds the last.
  assert.equal(shown.filter((s) => s.startsWith('refused')).length, 10);
  assert.equal(shown.filter((s) => s.startsWith('999 more like this in')).length, 10);
  assert.match(shown.at(-1)!, /999 more like this in 1\.0 s, the last: refused #9999$/);
});

test('kinds are limited separately; a quiet kind shows every line', () => {
  const l = new LineLimiter(1000);
  assert.deepEqual(l.offer('a', 'a1', 0), ['a1']);
  assert.deepEqual(l.offer('b', 'b1', 1), ['b1']);
  assert.deepEqual(l.offer('a', 'a2', 2), []);
  assert.deepEqual(l.offer('a', 'a3', 1500), ['1 more like this in 1.5 s, the last: a2', 'a3']);
  assert.deepEqual(l.offer('b', 'b2', 5000), ['b2']);
  assert.deepEqual(l.flush(5000), []);
});

test('property: every offered line is shown or counted in exactly one summary', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 300 })), { maxLength: 300 }), (steps) => {
      const l = new LineLimiter(100);
      let t = 0;
      let shown = 0;
      let summarised = 0;
      const take = (lines: readonly string[]): void => {
        for (const s of lines) {
          const m = /^(\d+) more like this/.exec(s);
          if (m !== null) summarised += Number(m[1]);
          else shown++;
        }
      };
      for (const [kind, dt] of steps) {
        t += dt;
        take(l.offer(kind, 'x', t));
        if (dt % 7 === 0) take(l.flush(t));
      }
      take(l.flush(t, true));
      assert.equal(shown + summarised, steps.length);
      assert.equal(summarised, l.suppressedTotal);
    }),
  );
});
