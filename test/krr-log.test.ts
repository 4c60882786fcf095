import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { after } from 'node:test';
import fc from 'fast-check';
import { KRR_LAYOUTS, type KrrLayout } from '../src/codec/krr-layout.ts';
import { chooseLayout, judgeLayouts } from '../src/codec/krr-detect.ts';
import { KrrLogParser } from '../src/codec/krr-log.ts';
import { KrrFrameAssembler } from '../src/codec/krr-frames.ts';
import { NetrrError } from '../src/errors.ts';
import { scanKrrLog } from '../src/io/krr-log-file.ts';
import { readCaptureFile } from '../src/io/capture-file.ts';
import { readPacketOptions } from '../src/pcap/pcapng-format.ts';
import { krrLogExportCommand } from '../src/cli/cmd-krr-log.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { type KrrFrameSpec, KrrLogWriter } from './helpers/krr-writer.ts';
import { netrr, run, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir('netrr-krr-');
after(() => tmp.cleanup());

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

/** A mix that exercises every mapping rule of the reference. */
function sampleFrames(): { specs: KrrFrameSpec[]; expected: Uint8Array[]; protocols: string[] } {
  const tcp = buildFrame({ proto: 'tcp', srcPort: 80, dstPort: 40000, payload: bytes(1460) }); // 1514 bytes
  const udp1024 = buildFrame({ proto: 'udp', payload: bytes(1024 - 42) }); // exactly 1024 bytes
  const tiny = buildFrame({ proto: 'udp', payload: '' }); // 42 bytes, padded to 60
  const tagged = buildFrame({ vlans: [100], proto: 'udp', payload: bytes(200) });
  const ping = buildFrame({ proto: 'icmp', payload: bytes(56) });
  const padded = new Uint8Array(60);
  padded.set(tiny);
  const untagged = new Uint8Array(tagged.length - 4);
  untagged.set(tagged.subarray(0, 12));
  untagged.set(tagged.subarray(16), 12);
  const specs: KrrFrameSpec[] = [
    { data: tcp },
    { data: udp1024 },
    { data: tiny },
    { data: tagged, vlanStrip: true },
    { data: ping, nullDescriptorBefore: true },
    { data: tcp, pieces: 3 },
  ];
  return { specs, expected: [tcp, udp1024, padded, untagged, ping, tcp], protocols: ['tcp', 'udp', 'udp', 'udp', 'icmp', 'tcp'] };
}

function writeLog(layout: KrrLayout, rxbuf: number, specs: KrrFrameSpec[], repeat = 1): Uint8Array {
  const w = new KrrLogWriter({ layout, rxbuf, seed: layout.entryBytes + rxbuf });
  for (let i = 0; i < repeat; i++) for (const s of specs) w.frame(s);
  return w.bytes();
}

function rebuild(layout: KrrLayout, log: Uint8Array): { frames: Uint8Array[]; asm: KrrFrameAssembler; parser: KrrLogParser } {
  const frames: Uint8Array[] = [];
  const asm = new KrrFrameAssembler((f) => frames.push(f.data.slice()));
  const parser = new KrrLogParser(layout, asm);
  assert.equal(parser.parse(log, 0, log.length), log.length);
  asm.finish();
  return { frames, asm, parser };
}

for (const rxbuf of [2048, 1024]) {
  test(`every layout, ${rxbuf}-byte receive buffers: detected as itself alone, frames rebuilt byte for byte`, () => {
    const { specs, expected } = sampleFrames();
    for (const layout of KRR_LAYOUTS) {
      const log = writeLog(layout, rxbuf, specs);
      const verdicts = judgeLayouts(log, true);
      assert.deepEqual(verdicts.filter((v) => v.fits).map((v) => v.layout.name), [layout.name], `${layout.name}: ${verdicts.map((v) => `${v.layout.name}: ${v.reason}`).join('\n')}`);
      assert.equal(chooseLayout(verdicts, true), layout);
      const { frames, asm, parser } = rebuild(layout, log);
      assert.deepEqual(frames.map((f) => Buffer.from(f).toString('hex')), expected.map((f) => Buffer.from(f).toString('hex')), layout.name);
      // Reference: with 2048-byte buffers a frame is one entry; with 1024 a 1514-byte frame is two,
      // and a 1024-byte frame leaves a second entry holding only the write-back (the FCS).
      const perFrame = rxbuf === 2048 ? [1, 1, 1, 1, 2, 1] : [2, 2, 1, 1, 2, 2];
      assert.equal(parser.entries, perFrame.reduce((a, b) => a + b), layout.name);
      assert.equal(asm.writebackOnlyEntries, rxbuf === 2048 ? 1 : 2, 'the null descriptor, and with 1024-byte buffers the FCS-only entry');
      assert.deepEqual({ ...asm.warnings }, { eopWithoutData: 0, noDd: 0, lengthMismatch: 0, bufferMismatch: 0, oversize: 0, unfinishedBytes: 0 });
      if (layout.sgChecksumValid) assert.deepEqual([parser.checksumOk, parser.checksumBad], [parser.sgs, 0]);
      else assert.equal(parser.checksumOk + parser.checksumBad, 0, 'list-docheck checksums are junk: not judged');
    }
  });
}

test('export of every layout: tshark reads the frames; our reader finds icount, cpu and entry options', async () => {
  const { specs, expected, protocols } = sampleFrames();
  for (const layout of KRR_LAYOUTS) {
    const file = join(tmp.path, `${layout.name}.log`);
    const out = join(tmp.path, `${layout.name}.pcapng`);
    writeFileSync(file, writeLog(layout, 1024, specs));
    const { frames } = await krrLogExportCommand(file, out, {});
    assert.equal(frames, expected.length);
    const t = await run('tshark', ['-r', out, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.protocols']);
    assert.equal(tsharkStderr(t.stderr), '', layout.name);
    const rows = t.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(rows.map((r) => Number(r[0])), expected.map((f) => f.length), layout.name);
    rows.forEach((r, i) => assert.ok(r[1]!.split(':').includes(protocols[i]!), `${layout.name} frame ${i}: ${r[1]}`));
    const custom: string[][] = [];
    await readCaptureFile(out, (r) => custom.push(readPacketOptions(r.options, r.littleEndian).custom.map((c) => Buffer.from(c.value).toString('utf8'))));
    assert.equal(custom.length, expected.length);
    const first = custom[0]!;
    assert.ok(first.some((c) => (layout.instCntAt < 0 ? c === 'icount=-' : /^icount=\d+$/.test(c))), first.join(' '));
    assert.ok(first.some((c) => (layout.cpuIdAt < 0 ? c === 'cpu=-' : /^cpu=\d$/.test(c))), first.join(' '));
    assert.ok(first.includes('entries=0-1'), '1514 bytes in 1024-byte buffers: two entries');
    assert.ok(custom[3]!.includes('vlan-stripped=100'), custom[3]!.join(' '));
  }
});

test('CLI: info names the layout and why the others were ruled out; entries decode the write-back', async () => {
  const { specs } = sampleFrames();
  const layout = KRR_LAYOUTS.find((l) => l.name === 'arr1024-cpu')!;
  const file = join(tmp.path, 'cli.log');
  writeFileSync(file, writeLog(layout, 2048, specs, 3));
  const info = await netrr(['krr-log', 'info', '--json', file]);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.layout, 'arr1024-cpu');
  assert.equal(j.frames, 18);
  assert.equal(j.entries, 21);
  assert.deepEqual(j.vcpus, [0, 1]);
  assert.equal(j.endsCleanly, true);
  assert.deepEqual(j.checksums, { ok: j.sgPieces, bad: 0 });
  assert.equal(j.detection.filter((d: { fits: boolean }) => !d.fits).length, 8);
  assert.ok(j.instructionCount.min < j.instructionCount.max);
  assert.equal(j.descriptorRing.lowest, '0x3f400000');
  const text = await netrr(['krr-log', 'info', file]);
  assert.match(text.stdout, /layout +arr1024-cpu \(KRR since e8b06783500d/);
  assert.equal(text.stdout.split('\n').filter((l) => l.includes('ruled out')).length, 8);
  const ent = await netrr(['krr-log', 'entries', '--json', file]);
  assert.equal(ent.code, 0, ent.stderr);
  const lines = ent.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 21);
  assert.deepEqual(lines[0].writeback.status, ['DD', 'EOP', 'IXSM']);
  assert.equal(lines[0].writeback.length, 1518, 'the length counts the FCS');
  assert.equal(lines[0].sgs[0].length, 1514);
  assert.equal(lines[3].writeback.special, 100);
  assert.ok(lines[3].writeback.status.includes('VP'));
  assert.deepEqual(lines[4].sgs, [], 'the null-buffer descriptor: only a write-back');
  const forced = await netrr(['krr-log', 'info', '--json', '--layout', 'arr1024-inst', file]);
  assert.equal(forced.code, 65, 'the wrong layout reads damage');
  assert.equal(JSON.parse(forced.stdout).damage.code, 'ERR_KRR_LOG_BAD_ENTRY');
  const badName = await netrr(['krr-log', 'info', '--layout', 'nope', file]);
  assert.equal(badName.code, 64);
  assert.match(badName.stderr, /arr1024, arr1024-inst/);
});

test('an empty log (nothing arrived) is a valid recording: exit 0, and an empty pcapng that tshark reads', async () => {
  const file = join(tmp.path, 'empty.log');
  writeFileSync(file, new Uint8Array(0));
  const info = await netrr(['krr-log', 'info', '--json', file]);
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).layout, null);
  const out = join(tmp.path, 'empty.pcapng');
  const x = await netrr(['krr-log', 'export', file, out]);
  assert.equal(x.code, 0, x.stderr);
  const t = await run('tshark', ['-r', out]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout.trim(), '');
});

test('a log cut short anywhere: frames completed before the cut are exported, then a coded error (exit 65)', async () => {
  const { specs, expected } = sampleFrames();
  const layout = KRR_LAYOUTS.find((l) => l.name === 'list-docheck')!;
  const whole = writeLog(layout, 1024, specs, 4);
  const counts = new Set<number>();
  const starts: number[] = [];
  new KrrLogParser(layout, { entry: (e) => starts.push(e.offset), sg() {}, entryEnd() {} }).parse(whole, 0, whole.length);
  const L = layout;
  // Cuts inside an entry struct, an SG struct and SG data, at several places, and in the last byte.
  const cuts = [starts[1]! + 10, starts[7]! + L.entryBytes + 5, starts[12]! + L.entryBytes + L.sgBytes + 7, starts[20]! + 50, whole.length - 1];
  for (const cut of cuts) {
    const file = join(tmp.path, `cut-${cut}.log`);
    writeFileSync(file, whole.subarray(0, cut));
    const frames: Uint8Array[] = [];
    const asm = new KrrFrameAssembler((f) => frames.push(f.data.slice()));
    const scan = await scanKrrLog(file, asm);
    assert.equal(scan.layout?.name, 'list-docheck', `cut at ${cut}: detected despite the cut`);
    assert.equal(scan.damage?.code, 'ERR_KRR_LOG_TRUNCATED', `cut at ${cut}`);
    assert.ok(frames.length < 24);
    frames.forEach((f, i) => assert.deepEqual(f, expected[i % expected.length]));
    const out = join(tmp.path, `cut-${cut}.pcapng`);
    const x = await netrr(['krr-log', 'export', file, out]);
    assert.equal(x.code, 65);
    assert.match(x.stderr, /cut short.*exported the \d+ frames completed before it/);
    const t = await run('tshark', ['-r', out, '-T', 'fields', '-e', 'frame.len']);
    assert.equal(t.stdout.trim() === '' ? 0 : t.stdout.trim().split('\n').length, frames.length);
    counts.add(frames.length);
  }
  assert.ok(counts.size >= 4, 'cuts at different places keep different numbers of frames');
  // A cut between entries but inside a frame (its first 1024 bytes logged, the rest not): structurally clean, the partial frame counted.
  const file = join(tmp.path, 'cut-boundary.log');
  writeFileSync(file, whole.subarray(0, starts[1]!));
  const info = await netrr(['krr-log', 'info', '--json', file]);
  assert.equal(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  assert.equal(j.frames, 0);
  assert.equal(j.warnings.unfinishedBytes, 1024);
});

test('bad fields: an SG count beyond the array, a length past the end, an oversized SG, a write-back without data', async () => {
  const { specs } = sampleFrames();
  const arr = KRR_LAYOUTS.find((l) => l.name === 'arr1024')!;
  const log = writeLog(arr, 2048, specs, 2);
  // Entry 3 (the VLAN frame) claims 1025 SGs.
  const bad = log.slice();
  const entryOffsets: number[] = [];
  new KrrLogParser(arr, { entry: (e) => entryOffsets.push(e.offset), sg() {}, entryEnd() {} }).parse(log, 0, log.length);
  const off = entryOffsets[3]!;
  bad[off] = 0x01;
  bad[off + 1] = 0x04; // 1025
  const file = join(tmp.path, 'sgcount.log');
  writeFileSync(file, bad);
  const frames: number[] = [];
  const scan = await scanKrrLog(file, new KrrFrameAssembler((f) => frames.push(f.data.length)));
  assert.equal(scan.layout, arr, 'detected from the entries before the damage');
  assert.equal(scan.damage?.code, 'ERR_KRR_LOG_BAD_ENTRY');
  assert.match(scan.damage!.message, /claims 1025 SGs; this layout's array holds 1 to 1024/);
  assert.equal(scan.damage!.offset, off);
  assert.deepEqual(frames, [1514, 1024, 60]);

  // An SG length beyond any e1000 buffer, and one that runs past the end of the file.
  const sgLenAt = entryOffsets[1]! + arr.entryBytes + 8;
  const big = log.slice();
  big[sgLenAt + 2] = 0x10; // 1024 + 0x100000
  assert.throws(() => new KrrLogParser(arr, new KrrFrameAssembler()).parse(big, 0, big.length), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_KRR_LOG_BAD_ENTRY' && /an e1000 receive buffer holds at most 16384/.test(e.message));
  const tail = writeLog(arr, 2048, [{ data: buildFrame({ proto: 'udp', payload: bytes(100) }) }]);
  const cut = tail.slice(0, arr.entryBytes + arr.sgBytes + 50);
  writeFileSync(join(tmp.path, 'past.log'), cut);
  const s2 = await scanKrrLog(join(tmp.path, 'past.log'), new KrrFrameAssembler(), { layout: arr });
  assert.equal(s2.damage?.code, 'ERR_KRR_LOG_TRUNCATED');
  assert.match(s2.damage!.message, /claims 142 data bytes/);

  // A write-back with EOP when no data came before it: counted, the next frame still rebuilt.
  const w = new KrrLogWriter({ layout: arr });
  const only = writeLog(arr, 2048, [{ data: buildFrame({ proto: 'udp', payload: bytes(10) }) }]);
  // Take the entry, drop its data SG: len 1, write-back only, EOP set.
  const e = only.slice(0, arr.entryBytes);
  e[0] = 1;
  const wbStart = arr.entryBytes + arr.sgBytes + 60;
  const orphan = Buffer.concat([e, only.subarray(wbStart)]);
  w.frame({ data: buildFrame({ proto: 'udp', payload: bytes(30) }) });
  const { frames: rebuilt, asm } = rebuild(arr, Buffer.concat([orphan, w.bytes()]));
  assert.equal(asm.warnings.eopWithoutData, 1);
  assert.equal(rebuilt.length, 1);
});

test('ambiguity and no fit are refused with ERR_KRR_LOG_LAYOUT naming the layouts', () => {
  const [a, b] = KRR_LAYOUTS;
  const v = (layout: KrrLayout, fits: boolean, entries: number, clean: boolean) => ({ layout, fits, entries, clean, reason: 'r' });
  assert.throws(() => chooseLayout([v(a!, true, 5, true), v(b!, true, 5, true)], true), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_KRR_LOG_LAYOUT' && /arr1024, arr1024-inst; choose one with --layout/.test(e.message));
  assert.equal(chooseLayout([v(a!, true, 5, true), v(b!, true, 4, false)], true), a, 'a clean end beats a cut one');
  assert.throws(() => chooseLayout([v(a!, false, 0, false), v(b!, false, 1, false)], true), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_KRR_LOG_LAYOUT' && /no KRR network-log layout/.test(e.message));
  const tiny = judgeLayouts(new Uint8Array(50), true);
  assert.ok(tiny.every((x) => !x.fits));
});

test('property: arbitrary bytes, and valid logs with bytes flipped, never throw anything but a NetrrError', () => {
  const { specs } = sampleFrames();
  const seeds = KRR_LAYOUTS.filter((l) => l.sgArray === 0 || l.sgArray === 1024).map((l) => writeLog(l, 1024, specs.slice(0, 3)));
  const check = (b: Uint8Array): void => {
    try {
      chooseLayout(judgeLayouts(b, true), true);
    } catch (e) {
      assert.ok(e instanceof NetrrError, String(e));
    }
    for (const layout of KRR_LAYOUTS) {
      const asm = new KrrFrameAssembler();
      try {
        new KrrLogParser(layout, asm).parse(b, 0, b.length);
      } catch (e) {
        assert.ok(e instanceof NetrrError, String(e));
      }
      asm.finish();
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 20000 }), check), { numRuns: 60 });
  fc.assert(
    fc.property(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 8 }), fc.nat(), (i, flips, cutAt) => {
      const b = seeds[i]!.slice(0, Math.max(1, cutAt % (seeds[i]!.length + 1)));
      for (const [at, v] of flips) b[at % b.length] = v;
      check(b);
    }),
    { numRuns: 150 },
  );
});
