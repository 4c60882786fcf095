// The compare engine's connection table: a key finds its connection exactly
// when the fields that count are equal (addresses by family: 4 bytes for IPv4,
// 16 for IPv6, 6 for ARP; bytes past those are ignored, as classification
// leaves them stale), and the bound evicts the least recently used idle
// connection first.

import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { ConnKey } from '../src/engine/colo-compare/compare-packet.ts';
import { type Connection, ConnectionTable } from '../src/engine/colo-compare/connection-table.ts';

interface K {
  family: 0 | 4 | 6;
  proto: number;
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
}

function key(k: K, junk: number): ConnKey {
  const c = new ConnKey();
  c.family = k.family;
  c.proto = k.proto;
  // Bytes past the family's length hold junk, as a reused key does after an IPv6 frame.
  c.src.fill(junk);
  c.dst.fill(junk);
  const n = k.family === 6 ? 16 : k.family === 4 ? 4 : 6;
  for (let i = 0; i < n; i++) {
    c.src[i] = k.src[i]!;
    c.dst[i] = k.dst[i]!;
  }
  if (k.family === 0) {
    // classifyExtended zeroes ARP keys before filling 6 bytes: the junk cannot be there.
    c.src.fill(0, 6);
    c.dst.fill(0, 6);
  }
  c.sport = k.sport;
  c.dport = k.dport;
  c.finishHash();
  return c;
}

const same = (a: K, b: K): boolean => {
  const n = a.family === 6 ? 16 : a.family === 4 ? 4 : 6;
  return a.family === b.family && a.proto === b.proto && a.sport === b.sport && a.dport === b.dport && a.src.slice(0, n).join() === b.src.slice(0, n).join() && a.dst.slice(0, n).join() === b.dst.slice(0, n).join();
};

test('property: a key finds the connection made for another exactly when their significant fields are equal', () => {
  const bytes = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 });
  const k = fc.record({ family: fc.constantFrom<0 | 4 | 6>(0, 4, 6), proto: fc.constantFrom(6, 17), src: bytes, dst: bytes, sport: fc.integer({ min: 0, max: 65535 }), dport: fc.integer({ min: 0, max: 65535 }) });
  // The second key is the first with at most one field changed: keys that differ in one byte are the ones a weak match lets through.
  const change = fc.record({ what: fc.constantFrom('none', 'family', 'proto', 'sport', 'dport', 'src', 'dst'), at: fc.nat(15), value: fc.nat(255) });
  fc.assert(
    fc.property(k, change, fc.nat(255), fc.nat(255), (a, ch, j1, j2) => {
      const b: K = { ...a, src: [...a.src], dst: [...a.dst] };
      if (ch.what === 'family') b.family = a.family === 4 ? 6 : 4;
      else if (ch.what === 'proto') b.proto = a.proto === 6 ? 17 : 6;
      else if (ch.what === 'sport') b.sport = (a.sport + 1) & 0xffff;
      else if (ch.what === 'dport') b.dport = (a.dport + 1) & 0xffff;
      else if (ch.what === 'src') b.src[ch.at] = ch.value;
      else if (ch.what === 'dst') b.dst[ch.at] = ch.value;
      const t = new ConnectionTable(16);
      const ca = t.get(key(a, j1), () => {});
      const kb = key(b, j2);
      const cb = t.get(kb, () => {});
      assert.equal(ca === cb, same(a, b));
      assert.equal(t.size, same(a, b) ? 1 : 2);
      // As if the two hashes collided: the fields alone must tell them apart.
      kb.hash = ca.hash;
      assert.equal(ca.matches(kb), same(a, b));
    }),
    { numRuns: 500 },
  );
});

test('the bound evicts the least recently used idle connection, handing it over first', () => {
  const t = new ConnectionTable(3);
  const k = (port: number): ConnKey => key({ family: 4, proto: 17, src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: port, dport: 53 }, 0);
  const evicted: Connection[] = [];
  const c1 = t.get(k(1), (c) => evicted.push(c));
  t.get(k(2), (c) => evicted.push(c));
  t.get(k(3), (c) => evicted.push(c));
  assert.equal(t.get(k(1), (c) => evicted.push(c)), c1, 'found again, and now the most recently used');
  t.get(k(4), (c) => evicted.push(c));
  assert.deepEqual(evicted.map((c) => c.sport), [2]);
  assert.equal(t.size, 3);
  assert.equal(t.evicted, 1);
});
