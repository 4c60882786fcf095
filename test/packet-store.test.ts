// The compare engine's packet store: copies only what waits, reuses slabs
// once their packets have left, and copyOutIfSparse bounds the memory a few
// slow packets can pin.

import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import type { ComparePacket } from '../src/engine/colo-compare/compare-packet.ts';
import { PacketStore, STORE_MAX_SLAB_FRAME_BYTES, STORE_SLAB_BYTES, STORE_SPARSE_FRACTION } from '../src/engine/colo-compare/packet-store.ts';

function borrowed(store: PacketStore, bytes: Uint8Array): ComparePacket {
  const p = store.acquire();
  p.buf = bytes;
  p.off = 0;
  p.len = bytes.length;
  p.borrowed = true;
  return p;
}

const view = (p: ComparePacket): number[] => [...p.buf.subarray(p.off, p.off + p.len)];

test('keep copies a borrowed frame; the caller may then reuse its buffer', () => {
  const store = new PacketStore();
  const input = new Uint8Array([1, 2, 3, 4, 5]);
  const p = borrowed(store, input);
  store.keep(p);
  input.fill(9);
  assert.deepEqual(view(p), [1, 2, 3, 4, 5]);
  assert.equal(p.borrowed, false);
  assert.equal(store.slabsInUse, 1);
  store.free(p);
  assert.equal(store.slabsInUse, 1, 'the current slab stays, emptied');
  const big = borrowed(store, new Uint8Array(STORE_MAX_SLAB_FRAME_BYTES + 1).fill(7));
  store.keep(big);
  assert.equal(big.slab, null, 'a large frame gets a buffer of its own');
  assert.equal(big.buf[STORE_MAX_SLAB_FRAME_BYTES], 7);
});

test('slabs are reused once their packets left; objects come back from the pool', () => {
  const store = new PacketStore();
  const frame = new Uint8Array(1500).fill(3);
  for (let round = 0; round < 20; round++) {
    const ps: ComparePacket[] = [];
    for (let i = 0; i < 400; i++) {
      const p = borrowed(store, frame);
      store.keep(p);
      ps.push(p);
    }
    for (const p of ps) store.free(p);
  }
  // 400 × 1500 B = 600 kB per round: three slabs, allocated once.
  assert.ok(store.slabsAllocated <= 4, `${store.slabsAllocated} slabs allocated`);
  const a = store.acquire();
  store.free(a);
  assert.equal(store.acquire(), a, 'the same object again');
});

test('property: kept bytes stay right, and after copying out sparse slabs the store holds at most 1/fraction times the live bytes (plus one slab)', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ keep: fc.boolean(), size: fc.integer({ min: 60, max: 9000 }), pick: fc.nat() }), { minLength: 1, maxLength: 400 }), (ops) => {
      const store = new PacketStore();
      const live: { p: ComparePacket; fill: number }[] = [];
      let fill = 0;
      for (const op of ops) {
        if (op.keep || live.length === 0) {
          fill = (fill + 1) & 0xff;
          const p = borrowed(store, new Uint8Array(op.size).fill(fill));
          store.keep(p);
          live.push({ p, fill });
        } else {
          const [gone] = live.splice(op.pick % live.length, 1);
          store.free(gone!.p);
        }
      }
      for (const { p } of live) store.copyOutIfSparse(p);
      let liveSlabBytes = 0;
      for (const { p, fill: f } of live) {
        assert.ok(p.buf.subarray(p.off, p.off + p.len).every((b) => b === f), 'bytes intact');
        if (p.slab !== null) liveSlabBytes += p.len;
      }
      assert.ok(store.slabBytes <= liveSlabBytes / STORE_SPARSE_FRACTION + STORE_SLAB_BYTES, `${store.slabBytes} bytes of slabs for ${liveSlabBytes} live`);
    }),
  );
});
