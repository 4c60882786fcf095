import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import { ByteReader } from '../src/codec/byte-reader.ts';
import { NetrrError } from '../src/errors.ts';

test('reads fields in order and advances', () => {
  const b = Uint8Array.from([1, 0x34, 0x12, 0x12, 0x34, 0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff, 9, 9]);
  const r = new ByteReader(b, 0, b.length, 1000);
  assert.equal(r.u8(), 1);
  assert.equal(r.u16le(), 0x1234);
  assert.equal(r.u16be(), 0x1234);
  assert.equal(r.u32le(), 0x12345678);
  assert.equal(r.i32le(), -1);
  assert.equal(r.offset, 1013);
  assert.deepEqual([...r.bytes(2)], [9, 9]);
  assert.equal(r.remaining, 0);
});

test('running past the end throws the given code with the absolute offset', () => {
  const r = new ByteReader(new Uint8Array(10), 2, 7, 100, 'ERR_LOG_TRUNCATED');
  r.skip(3);
  assert.throws(
    () => r.u32le('record length'),
    (e: unknown) => e instanceof NetrrError && e.code === 'ERR_LOG_TRUNCATED' && e.offset === 105 && /record length needs 4 bytes at offset 105; only 2 remain/.test(e.message),
  );
  // A failed read does not move the cursor.
  assert.equal(r.offset, 105);
  assert.equal(r.u16be(), 0);
});

test('u64 as a number refuses 2^53 and beyond, at the absolute offset', () => {
  const b = new Uint8Array(16);
  b[15] = 1;
  const r = new ByteReader(b, 0, 16, 50);
  assert.equal(r.u64leNumber(), 0);
  assert.throws(() => r.u64leNumber('icount'), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_VALUE_RANGE' && e.offset === 58);
});

test('property: any sequence of reads either succeeds within bounds or throws a NetrrError', () => {
  const ops = ['u8', 'u16le', 'u16be', 'u32le', 'u32be', 'i32le', 'u64le', 'u64be', 'u64leNumber', 'u64beNumber'] as const;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(fc.oneof(fc.constantFrom(...ops), fc.nat(12)), { maxLength: 20 }), (b, seq) => {
      const r = new ByteReader(b);
      for (const op of seq) {
        const before = r.pos;
        try {
          if (typeof op === 'number') r.bytes(op);
          else r[op]();
        } catch (e) {
          assert.ok(e instanceof NetrrError, String(e));
          assert.equal(r.pos, before);
        }
        assert.ok(r.pos <= b.length);
      }
    }),
  );
});
