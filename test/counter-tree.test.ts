import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { counterLeaves, numericFields } from '../src/engine/counter-tree.ts';
import { EndpointCounters } from '../src/engine/frame-counters.ts';

test('numericFields keeps numbers and nested counter objects, leaves out methods, strings, arrays, nulls and empty branches', () => {
  const c = new EndpointCounters();
  c.rxFrames = 3;
  c.txDrops.noPeer = 2;
  const t = numericFields(c);
  assert.equal(t.rxFrames, 3);
  assert.deepEqual(t.txDrops, { noPeer: 2, backpressure: 0, tooLong: 0, writeError: 0, closed: 0, tapRefused: 0 });
  assert.equal('rxDropped' in t, false);
  assert.deepEqual(numericFields({ a: 1, s: 'x', b: true, l: [1, 2], n: null, e: { s: 'only a string' }, d: { x: 2 } }), { a: 1, d: { x: 2 } });
});

test('counterLeaves names every leaf by its dotted path, depth first', () => {
  assert.deepEqual(counterLeaves({ a: 1, b: { c: 2, d: { e: 3 } }, f: 4 }), [['a', 1], ['b.c', 2], ['b.d.e', 3], ['f', 4]]);
});

test('property: every number of an object appears once as a leaf, at its path', () => {
  const key = fc.string({ minLength: 1, maxLength: 4 }).filter((k) => !k.includes('.') && k !== '__proto__');
  const tree = fc.letrec((tie) => ({ node: fc.dictionary(key, fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string(), tie('node')), { maxKeys: 4 }) })).node;
  fc.assert(
    fc.property(tree, (o) => {
      const expected: [string, number][] = [];
      const walk = (x: Record<string, unknown>, prefix: string): void => {
        for (const [k, v] of Object.entries(x)) {
          if (typeof v === 'number') expected.push([prefix + k, v]);
          else if (typeof v === 'object' && v !== null) walk(v as Record<string, unknown>, `${prefix}${k}.`);
        }
      };
      walk(o, '');
      assert.deepEqual(counterLeaves(numericFields(o)), expected);
    }),
  );
});
