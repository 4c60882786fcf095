import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameDecoder, NET_BUFSIZE_BYTES, encodeRecord, encodeRecordInto, recordWireBytes } from '../src/codec/qemu-framing.ts';
import { RecordBatch } from '../src/codec/record-batch.ts';
import { NetrrError } from '../src/errors.ts';

interface Rec {
  frame: Uint8Array;
  vnet: number;
}

function collect(vnetHdr: boolean, chunks: Uint8Array[]): { recs: Rec[]; d: FrameDecoder; err: NetrrError | null } {
  const recs: Rec[] = [];
  const d = new FrameDecoder({ vnetHdr }, (frame, vnet) => recs.push({ frame: frame.slice(), vnet }));
  let err: NetrrError | null = null;
  for (const c of chunks) err = d.push(c) ?? err;
  return { recs, d, err };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Splits bytes at the given cut points. */
function split(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const pts = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of pts) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  out.push(b.subarray(prev));
  return out;
}

test('golden vector from QEMU test-filter-mirror: be32 0x16 + 22 bytes', () => {
  const payload = new TextEncoder().encode('Hello! filter-mirror~\0');
  const wire = encodeRecord(payload);
  assert.deepEqual([...wire.subarray(0, 4)], [0, 0, 0, 0x16]);
  const { recs } = collect(false, [wire]);
  assert.equal(recs.length, 1);
  assert.deepEqual(recs[0]!.frame, payload);
});

test('vnet field is written and read when enabled', () => {
  const frame = new Uint8Array(30).fill(7);
  const wire = encodeRecord(frame, true, 12);
  assert.equal(wire.length, 38);
  assert.deepEqual([...wire.subarray(4, 8)], [0, 0, 0, 12]);
  const { recs } = collect(true, [wire]);
  assert.equal(recs[0]!.vnet, 12);
  assert.deepEqual(recs[0]!.frame, frame);
});

test('a record split at every byte boundary decodes identically', () => {
  const frames = [new Uint8Array([1, 2, 3]), new Uint8Array(100).map((_, i) => i), new Uint8Array([9])];
  for (const vnet of [false, true]) {
    const wire = concat(frames.map((f) => encodeRecord(f, vnet, vnet ? 1 : 0)));
    for (let cut = 0; cut <= wire.length; cut++) {
      const { recs } = collect(vnet, [wire.subarray(0, cut), wire.subarray(cut)]);
      assert.deepEqual(recs.map((r) => r.frame), frames, `cut at ${cut}`);
    }
    const bytewise = collect(vnet, Array.from(wire, (x) => Uint8Array.of(x)));
    assert.deepEqual(bytewise.recs.map((r) => r.frame), frames);
  }
});

test('records wholly inside a chunk are views, not copies', () => {
  const wire = concat([encodeRecord(new Uint8Array(10).fill(1)), encodeRecord(new Uint8Array(5).fill(2))]);
  const views: Uint8Array[] = [];
  const d = new FrameDecoder({ vnetHdr: false }, (f) => views.push(f));
  d.push(wire);
  assert.equal(views.length, 2);
  assert.equal(views[0]!.buffer, wire.buffer);
  assert.equal(views[1]!.byteOffset, wire.byteOffset + 18);
});

test('zero-length records are counted, never delivered, and do not disturb framing', () => {
  const zero = new Uint8Array(4);
  const wire = concat([zero, encodeRecord(Uint8Array.of(5, 6)), zero, zero]);
  const { recs, d } = collect(false, [wire]);
  assert.equal(recs.length, 1);
  assert.equal(d.zeroLengthRecords, 3);
  assert.ok(d.atBoundary);
});

test('oversized length is a coded error; nothing after it is parsed until reset', () => {
  const bad = new Uint8Array([0, 1, 0x10, 0x01]); // 69633
  const good = encodeRecord(Uint8Array.of(1));
  const { recs, err, d } = collect(false, [good, bad, good]);
  assert.equal(recs.length, 1);
  assert.ok(err instanceof NetrrError);
  assert.equal(err.code, 'ERR_FRAME_TOO_LONG');
  assert.equal(err.offset, 5);
  assert.equal(d.push(good), err, 'stays failed');
  d.reset();
  assert.equal(d.push(good), null);
  assert.equal(d.records, 2);
});

test('error offsets count from the start of the current connection, not of every connection before it', () => {
  const good = encodeRecord(new Uint8Array(1000));
  const d = new FrameDecoder({ vnetHdr: false }, () => {});
  for (let i = 0; i < 68; i++) assert.equal(d.push(good), null);
  d.reset(); // a new connection
  const err = d.push(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
  assert.equal(err?.offset, 0);
  assert.match(err!.message, /stream offset 0\)/);
});

test('exactly NET_BUFSIZE is accepted', () => {
  const f = new Uint8Array(NET_BUFSIZE_BYTES);
  const { recs, err } = collect(false, [encodeRecord(f)]);
  assert.equal(err, null);
  assert.equal(recs.length, 1);
});

test('vnet_hdr_len larger than the record is skipped and counted, framing intact', () => {
  const wire = new Uint8Array(4 + 4 + 3);
  wire.set([0, 0, 0, 3, 0, 0, 0, 9, 1, 2, 3]);
  const { recs, d } = collect(true, [wire, encodeRecord(Uint8Array.of(4), true, 0)]);
  assert.equal(d.badVnetRecords, 1);
  assert.equal(recs.length, 1);
});

test('encoder refuses empty, oversized, and lying vnet lengths', () => {
  assert.throws(() => encodeRecord(new Uint8Array(0)), { code: 'ERR_PACKET_MALFORMED' });
  assert.throws(() => encodeRecord(new Uint8Array(NET_BUFSIZE_BYTES + 1)), { code: 'ERR_FRAME_TOO_LONG' });
  assert.throws(() => encodeRecord(new Uint8Array(4), true, 5), { code: 'ERR_VNET_HDR_TOO_LONG' });
});

test('RecordBatch holds only whole records and hands them over', () => {
  const b = new RecordBatch(false, 64);
  const f = new Uint8Array(20).fill(3);
  assert.ok(b.fits(20));
  b.append(f, 0);
  b.append(f, 0);
  assert.ok(!b.fits(20));
  const out = b.take()!;
  assert.equal(out.length, 48);
  assert.equal(collect(false, [out]).recs.length, 2);
  assert.equal(b.take(), null);
  const big = new Uint8Array(200);
  b.append(big, 0);
  assert.equal(b.take()!.length, 204);
});

const frameArb = fc.uint8Array({ minLength: 1, maxLength: 300 });

test('property: round-trip under arbitrary fragmentation, with and without vnet', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 20 }), fc.boolean(), fc.array(fc.nat(10_000), { maxLength: 30 }), (frames, vnet, cuts) => {
      const wire = new Uint8Array(frames.reduce((n, f) => n + recordWireBytes(f.length, vnet), 0));
      let o = 0;
      frames.forEach((f, i) => (o = encodeRecordInto(wire, o, f, vnet, vnet ? i % (f.length + 1) : 0)));
      const { recs, err, d } = collect(vnet, split(wire, cuts));
      assert.equal(err, null);
      assert.deepEqual(recs.map((r) => r.frame), frames);
      if (vnet) assert.deepEqual(recs.map((r) => r.vnet), frames.map((f, i) => i % (f.length + 1)));
      assert.ok(d.atBoundary);
    }),
    { numRuns: 300 },
  );
});

test('property: arbitrary bytes never throw; errors returned are ERR_FRAME_TOO_LONG', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), fc.array(fc.nat(3000), { maxLength: 10 }), (bytes, vnet, cuts) => {
      const d = new FrameDecoder({ vnetHdr: vnet, maxFrameBytes: 1500 }, (f) => {
        assert.ok(f.length > 0 && f.length <= 1500);
      });
      for (const c of split(bytes, cuts)) {
        const e = d.push(c);
        if (e !== null) assert.equal(e.code, 'ERR_FRAME_TOO_LONG');
      }
      assert.ok(d.pendingBytes <= 1500 + 8);
    }),
    { numRuns: 500 },
  );
});
