import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NetrrError } from '../src/errors.ts';
import { CaptureRecord, DIRECTION_OUTBOUND, formatEpoch } from '../src/pcap/capture-record.ts';
import { CaptureStream } from '../src/pcap/capture-stream.ts';
import { readPacketOptions } from '../src/pcap/pcapng-format.ts';
import { PcapWriter } from '../src/pcap/pcap-writer.ts';
import { NETRR_PEN, PcapngWriter } from '../src/pcap/pcapng-writer.ts';
import { divide64, div64, nanosToHiLo, splitEpochMs } from '../src/pcap/timestamp.ts';

interface Got {
  iface: number;
  sec: number;
  nsec: number;
  data: number[];
  orig: number;
  flags: number;
  comments: string[];
  custom: { pen: number; value: string }[];
}

function readAll(bytes: Uint8Array, chunk = bytes.length || 1): { got: Got[]; stream: CaptureStream; error: unknown } {
  const got: Got[] = [];
  const stream = new CaptureStream((r: CaptureRecord) => {
    const o = readPacketOptions(r.options, r.littleEndian);
    got.push({
      iface: r.interfaceIndex,
      sec: r.tsSec,
      nsec: r.tsNsec,
      data: [...r.data],
      orig: r.originalLength,
      flags: r.flags,
      comments: o.comments,
      custom: o.custom.map((c) => ({ pen: c.pen, value: Buffer.from(c.value).toString() })),
    });
  }, 64);
  let error: unknown = null;
  try {
    for (let i = 0; i < bytes.length; i += chunk) stream.push(bytes.subarray(i, i + chunk));
    stream.end();
  } catch (e) {
    error = e;
  }
  return { got, stream, error };
}

test('64-bit timestamp arithmetic is exact', () => {
  const out = { hi: 0, lo: 0 };
  nanosToHiLo(1_700_000_000, 123_456_789, out);
  const units = (BigInt(out.hi) << 32n) | BigInt(out.lo);
  assert.equal(units, 1_700_000_000_123_456_789n);
  divide64(out.hi, out.lo, 1e9);
  assert.equal(div64.quotient, 1_700_000_000);
  assert.equal(div64.remainder, 123_456_789);
  fc.assert(
    fc.property(fc.nat(2 ** 33), fc.nat(999_999_999), (s, ns) => {
      nanosToHiLo(s, ns, out);
      divide64(out.hi, out.lo, 1e9);
      assert.equal(div64.quotient, s);
      assert.equal(div64.remainder, ns);
    }),
  );
});

test('pcapng round trip: interfaces, flags, comments, custom options, odd lengths', () => {
  const w = new PcapngWriter({ comment: 'section note' });
  const a = w.addInterface({ linkType: 1, name: 'primary', description: 'primary_in' });
  const b = w.addInterface({ linkType: 1, name: 'secondary' });
  w.writePacket(a, 1_700_000_000, 1, Uint8Array.of(1, 2, 3), 3, { flags: DIRECTION_OUTBOUND, comments: ['first', 'ünïcode'], custom: ['epoch=7', Uint8Array.of(9, 9), 'état=ü€'] });
  w.writePacket(b, 1_700_000_001, 999_999_999, new Uint8Array(61).fill(5), 1500);
  w.writePacket(a, 0, 0, Uint8Array.of(7));
  const bytes = w.out.take()!;
  for (const chunk of [bytes.length, 1, 3, 17]) {
    const { got, stream, error } = readAll(bytes, chunk);
    assert.equal(error, null);
    assert.equal(stream.format, 'pcapng');
    assert.equal(stream.interfaces.length, 2);
    assert.equal(stream.interfaces[0]!.name, 'primary');
    assert.equal(stream.interfaces[0]!.description, 'primary_in');
    assert.equal(stream.pcapng!.sections[0]!.comments[0], 'section note');
    assert.equal(got.length, 3);
    assert.deepEqual(got[0], {
      iface: 0, sec: 1_700_000_000, nsec: 1, data: [1, 2, 3], orig: 3, flags: 2,
      comments: ['first', 'ünïcode'],
      custom: [{ pen: NETRR_PEN, value: 'epoch=7' }, { pen: NETRR_PEN, value: '\t\t' }, { pen: NETRR_PEN, value: 'état=ü€' }],
    });
    assert.equal(got[1]!.iface, 1);
    assert.equal(got[1]!.nsec, 999_999_999);
    assert.equal(got[1]!.orig, 1500);
    assert.equal(got[1]!.flags, -1);
    assert.equal(formatEpoch(got[2]!.sec, got[2]!.nsec), '0.000000000');
  }
});

test('pcap round trip, µs and ns', () => {
  for (const nanosecond of [false, true]) {
    const w = new PcapWriter(1, { nanosecond, snapLen: 65535 });
    w.writePacket(1_600_000_000, 123_456_789, Uint8Array.of(1, 2), 60);
    const { got, stream, error } = readAll(w.out.take()!, 5);
    assert.equal(error, null);
    assert.equal(stream.format, 'pcap');
    assert.equal(stream.pcapHeader!.nanosecond, nanosecond);
    assert.equal(got[0]!.nsec, nanosecond ? 123_456_789 : 123_456_000);
    assert.equal(got[0]!.orig, 60);
  }
});

test('big-endian pcap and big-endian pcapng sections are read', () => {
  // Hand-built big-endian pcap: magic a1b2c3d4, v2.4, snaplen 100, linktype 1, one 2-byte record.
  const be = Uint8Array.from([0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0, 0, 2, 0xaa, 0xbb]);
  const p = readAll(be, 7);
  assert.equal(p.error, null);
  assert.deepEqual(p.got[0]!.data, [0xaa, 0xbb]);
  assert.equal(p.got[0]!.sec, 5);
  assert.equal(p.got[0]!.nsec, 6000);
  // Big-endian pcapng: SHB, IDB (tsresol 10^-3), EPB ts=1500 units → 1.5 s.
  const shb = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28];
  const idb = [0, 0, 0, 1, 0, 0, 0, 32, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32];
  const epb = [0, 0, 0, 6, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0xdc, 0, 0, 0, 3, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 36];
  const ng = readAll(Uint8Array.from([...shb, ...idb, ...epb]), 5);
  assert.equal(ng.error, null);
  assert.equal(ng.stream.pcapng!.sections[0]!.littleEndian, false);
  assert.deepEqual(ng.got[0]!.data, [1, 2, 3]);
  assert.equal(ng.got[0]!.sec, 1);
  assert.equal(ng.got[0]!.nsec, 500_000_000);
});

test('several sections restart interface numbering', () => {
  const w1 = new PcapngWriter();
  w1.addInterface({ linkType: 1 });
  w1.writePacket(0, 1, 0, Uint8Array.of(1));
  const w2 = new PcapngWriter();
  w2.addInterface({ linkType: 101 });
  w2.writePacket(0, 2, 0, Uint8Array.of(2));
  const both = Buffer.concat([w1.out.take()!, w2.out.take()!]);
  const { got, stream, error } = readAll(both, 11);
  assert.equal(error, null);
  assert.equal(stream.pcapng!.sections.length, 2);
  assert.deepEqual(got.map((g) => g.iface), [0, 1]);
  assert.equal(stream.interfaces[1]!.linkType, 101);
});

test('coded errors: bad magic, cut-short file, absurd lengths, undefined interface', () => {
  const code = (b: Uint8Array): string => ((readAll(b).error as NetrrError | null)?.code ?? 'none');
  assert.equal(code(new Uint8Array(0)), 'ERR_PCAP_BAD_MAGIC');
  assert.equal(code(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), 'ERR_PCAP_BAD_MAGIC');
  const w = new PcapWriter(1);
  w.writePacket(1, 0, new Uint8Array(10));
  const good = w.out.take()!;
  assert.equal(code(good.subarray(0, good.length - 3)), 'ERR_PCAP_TRUNCATED');
  const huge = good.slice();
  huge.set([0xff, 0xff, 0xff, 0x7f], 24 + 8);
  assert.equal(code(huge), 'ERR_PCAP_BAD_RECORD');
  const ng = new PcapngWriter();
  ng.addInterface({ linkType: 1 });
  ng.writePacket(0, 0, 0, Uint8Array.of(1));
  const nb = ng.out.take()!;
  const badIf = nb.slice();
  badIf[nb.length - 36 + 8] = 5; // EPB (36 bytes for 1 data byte): interface id
  assert.equal(code(badIf), 'ERR_PCAPNG_BAD_INTERFACE');
  const badLen = nb.slice();
  badLen[nb.length - 4] = 0x99;
  assert.equal(code(badLen), 'ERR_PCAPNG_BAD_BLOCK');
});

test('property: arbitrary bytes (raw and behind valid headers) only ever fail with our codes', () => {
  const shb = new PcapngWriter().out.take()!;
  const ph = new PcapWriter(1).out.take()!;
  fc.assert(
    fc.property(fc.constantFrom(new Uint8Array(0), shb, ph), fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: 50 }), (prefix, tail, chunk) => {
      const { error } = readAll(Buffer.concat([prefix, tail]), chunk);
      if (error !== null) assert.ok(error instanceof NetrrError, String(error));
    }),
    { numRuns: 2000 },
  );
});

test('property: pcapng write → read is the identity on packets', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ data: fc.uint8Array({ maxLength: 100 }), sec: fc.nat(2 ** 32 - 1), nsec: fc.nat(999_999_999), dir: fc.constantFrom(0, 1, 2), comment: fc.option(fc.string()) }), { maxLength: 10 }),
      fc.integer({ min: 1, max: 64 }),
      (pkts, chunk) => {
        const w = new PcapngWriter();
        w.addInterface({ linkType: 1 });
        for (const p of pkts) w.writePacket(0, p.sec, p.nsec, p.data, p.data.length, p.comment === null ? { flags: p.dir } : { flags: p.dir, comments: [p.comment] });
        const { got, error } = readAll(w.out.take()!, chunk);
        assert.equal(error, null);
        assert.deepEqual(got.map((g) => [g.sec, g.nsec, g.data, g.flags, g.comments]), pkts.map((p) => [p.sec, p.nsec, [...p.data], p.dir, p.comment === null ? [] : [p.comment.replace(/\0+$/, '')]]));
      },
    ),
    { numRuns: 300 },
  );
});

test('pcapng: simple packet blocks, statistics, unknown and custom blocks, binary tsresol, tsoffset', () => {
  const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  const le16 = (v: number): number[] => [v & 0xff, v >>> 8];
  const block = (type: number, body: number[]): number[] => {
    while (body.length % 4) body.push(0);
    const total = 12 + body.length;
    return [...le32(type), ...le32(total), ...body, ...le32(total)];
  };
  const shb = block(0x0a0d0d0a, [...le32(0x1a2b3c4d), ...le16(1), ...le16(0), ...le32(0xffffffff), ...le32(0xffffffff)]);
  // IDB: linktype 1, snaplen 4; if_tsresol 0x81 (2^-1 s), if_tsoffset 100 s.
  const idb = block(1, [...le16(1), 0, 0, ...le32(4), ...le16(9), ...le16(1), 0x81, 0, 0, 0, ...le16(14), ...le16(8), ...le32(100), ...le32(0), 0, 0, 0, 0]);
  const spb = block(3, [...le32(6), 1, 2, 3, 4]); // original 6, snaplen 4 → 4 captured
  const unknown = block(0x0badbeef, [1, 2, 3]);
  const custom = block(0x00000bad, [...le32(32473), 9, 9]);
  const epb = block(6, [...le32(0), ...le32(0), ...le32(3), ...le32(2), ...le32(2), 7, 8]); // ts 3 units of 0.5 s
  const isb = block(5, [...le32(0), ...le32(0), ...le32(0), ...le16(4), ...le16(8), ...le32(10), ...le32(0), ...le16(5), ...le16(8), ...le32(1), ...le32(0), 0, 0, 0, 0]);
  const { got, stream, error } = readAll(Uint8Array.from([...shb, ...idb, ...spb, ...unknown, ...custom, ...epb, ...isb]), 9);
  assert.equal(error, null);
  assert.equal(got.length, 2);
  assert.deepEqual(got[0]!.data, [1, 2, 3, 4]);
  assert.equal(got[0]!.orig, 6);
  assert.deepEqual(got[1]!.data, [7, 8]);
  assert.equal(got[1]!.sec, 101);
  assert.equal(got[1]!.nsec, 500_000_000);
  assert.equal(stream.pcapng!.skippedBlocks, 2);
  assert.deepEqual(stream.pcapng!.stats.get(0), { received: 10, dropped: 1 });
  assert.equal(stream.interfaces[0]!.tsUnitsPerSec, 2);
});

test('property: splitEpochMs gives whole seconds and nanoseconds within 1 ns of the input', () => {
  const out = { sec: 0, nsec: 0 };
  fc.assert(
    fc.property(fc.double({ min: 0, max: 4e12, noNaN: true }), (ms) => {
      splitEpochMs(ms, out);
      assert.ok(Number.isInteger(out.sec) && out.nsec >= 0 && out.nsec <= 999_999_999);
      assert.ok(Math.abs(out.sec * 1000 + out.nsec / 1e6 - ms) <= 1e-6 + ms * 1e-15);
    }),
  );
});
