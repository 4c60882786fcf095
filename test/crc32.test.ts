import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NATIVE_CRC32_MIN_BYTES, crc32, crc32Js } from '../src/codec/crc32.ts';

test('CRC-32 check value and known vectors', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926); // the standard check value
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(new TextEncoder().encode('The quick brown fox jumps over the lazy dog')), 0x414fa339);
});

test('property: chaining equals one pass; slicing does not change the result', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (b, cut) => {
      const k = cut % (b.length + 1);
      assert.equal(crc32(b, k, b.length, crc32(b, 0, k)), crc32(b));
      // Reference bitwise implementation.
      let c = 0xffffffff;
      for (const x of b) {
        c ^= x;
        for (let i = 0; i < 8; i++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      assert.equal(crc32(b), (~c) >>> 0);
    }),
  );
});

test('property: the native path (long inputs) and slice-by-8 agree, chained across the threshold', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: NATIVE_CRC32_MIN_BYTES - 8, maxLength: 3 * NATIVE_CRC32_MIN_BYTES }), fc.nat(1000), fc.nat(0xffffffff), (b, cut, seed) => {
      const k = cut % (b.length + 1);
      assert.equal(crc32(b), crc32Js(b));
      assert.equal(crc32(b, 0, b.length, seed), crc32Js(b, 0, b.length, seed));
      assert.equal(crc32(b, k, b.length, crc32(b, 0, k)), crc32Js(b));
    }),
  );
});
