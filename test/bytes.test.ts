import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { NATIVE_EQUAL_MIN_BYTES, firstDifference, i32le, rangesEqual, u16, u16be, u16le, u32, u32be, u32le, u64be, u64beNumber, u64le, u64leNumber, w16be, w16le, w32be, w32le, w64le, w64leNumber } from '../src/codec/bytes.ts';
import { NetrrError } from '../src/errors.ts';

test('reads agree with DataView in both byte orders', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(8), (b, o) => {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      assert.equal(u16be(b, o), dv.getUint16(o, false));
      assert.equal(u16le(b, o), dv.getUint16(o, true));
      assert.equal(u32be(b, o), dv.getUint32(o, false));
      assert.equal(u32le(b, o), dv.getUint32(o, true));
      assert.equal(i32le(b, o), dv.getInt32(o, true));
      assert.equal(u16(b, o, true), u16le(b, o));
      assert.equal(u32(b, o, false), u32be(b, o));
      assert.equal(u64le(b, o), dv.getBigUint64(o, true));
      assert.equal(u64be(b, o), dv.getBigUint64(o, false));
    }),
  );
});

test('writes are the inverse of reads', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.maxSafeNat(), (a, c, d, e) => {
      const b = new Uint8Array(8);
      w16be(b, 0, a);
      assert.equal(u16be(b, 0), a);
      w16le(b, 0, a);
      assert.equal(u16le(b, 0), a);
      w32be(b, 0, c);
      assert.equal(u32be(b, 0), c);
      w32le(b, 0, c);
      assert.equal(u32le(b, 0), c);
      w64le(b, 0, d);
      assert.equal(u64le(b, 0), d);
      w64leNumber(b, 0, e);
      assert.equal(u64leNumber(b, 0), e);
    }),
  );
});

test('64-bit reads as numbers refuse values that would round', () => {
  const b = new Uint8Array(8);
  w64le(b, 0, 2n ** 53n - 1n);
  assert.equal(u64leNumber(b, 0), 2 ** 53 - 1);
  w64le(b, 0, 2n ** 53n);
  assert.throws(() => u64leNumber(b, 0), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_VALUE_RANGE');
  const be = new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => u64beNumber(be, 0), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_VALUE_RANGE');
  assert.throws(() => w64leNumber(b, 0, 2 ** 53), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_VALUE_RANGE');
  assert.throws(() => w64leNumber(b, 0, -1), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_VALUE_RANGE');
});

test('rangesEqual and firstDifference agree with a plain comparison, on both sides of the native threshold', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(199), fc.nat(199), fc.nat(120), fc.option(fc.nat(199)), (base, ao, bo, len, flip) => {
      const a = Uint8Array.from(base);
      const b = new Uint8Array(base.length + 40);
      b.set(base, 0);
      b.set(base, Math.min(40, b.length - base.length));
      if (flip !== null && flip < b.length) b[flip] = (b[flip]! + 1) & 0xff;
      const inRange = ao + len <= a.length && bo + len <= b.length;
      let expect = inRange;
      let diff = -1;
      if (inRange) {
        for (let i = 0; i < len; i++) {
          if (a[ao + i] !== b[bo + i]) {
            expect = false;
            diff = i;
            break;
          }
        }
      }
      assert.equal(rangesEqual(a, ao, b, bo, len), expect);
      if (inRange) assert.equal(firstDifference(a, ao, ao + len, b, bo, bo + len), diff < 0 ? len : diff);
    }),
  );
  const big = new Uint8Array(NATIVE_EQUAL_MIN_BYTES * 4).fill(9);
  const other = Uint8Array.from(big);
  assert.ok(rangesEqual(big, 0, other, 0, big.length));
  other[big.length - 1] = 0;
  assert.ok(!rangesEqual(big, 0, other, 0, big.length));
  assert.equal(firstDifference(big, 0, big.length, other, 0, other.length), big.length - 1);
  assert.ok(!rangesEqual(big, 1, other, 0, big.length), 'a range past the end is not equal');
});
