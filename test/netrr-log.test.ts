import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { NetrrError } from '../src/errors.ts';
import { LOG_HEADER_BYTES, LogParser, REC_FRAME, decodeLogHeader, encodeLogHeader, encodeRecordAt, recordBytes } from '../src/codec/netrr-log.ts';
import { logSegments, repairSegment, scanSegment } from '../src/io/log-file.ts';
import { LogWriter, parseSyncPolicy } from '../src/io/log-writer.ts';
import { netrr, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-log-');
after(() => tmp.cleanup());
let n = 0;
const file = (): string => join(tmp.path, `l${n++}.nrrlog`);

function frames(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(14 + (i % 300)).fill(i & 0xff));
}

async function writeLog(path: string, fs: Uint8Array[], opts: Parameters<typeof LogWriter.create>[1] = {}): Promise<LogWriter> {
  const w = await LogWriter.create(path, opts);
  fs.forEach((f, i) => w.append(i % 2, 0, 0, f));
  await w.close();
  return w;
}

async function readAll(path: string): Promise<{ payloads: Uint8Array[]; seqs: number[]; ports: number[] }> {
  const payloads: Uint8Array[] = [];
  const seqs: number[] = [];
  const ports: number[] = [];
  for (const p of logSegments(path)) {
    const s = await scanSegment(p, (r) => {
      payloads.push(Uint8Array.from(r.payload));
      seqs.push(r.seq);
      ports.push(r.port);
    });
    assert.equal(s.damage, null);
    assert.notEqual(s.footer, null);
  }
  return { payloads, seqs, ports };
}

test('header round trip and coded errors', () => {
  const h = encodeLogHeader({ version: 1, segment: 3, flags: 0, firstSeq: 2 ** 40, createdNs: 1_700_000_000_123_456_789n });
  const d = decodeLogHeader(h);
  assert.equal(d.segment, 3);
  // Nanoseconds since 1970 exceed 2^53: the header keeps them exact.
  assert.equal(d.createdNs, 1_700_000_000_123_456_789n);
  assert.equal(d.firstSeq, 2 ** 40);
  const bad = h.slice();
  bad[20] = bad[20]! ^ 1;
  assert.throws(() => decodeLogHeader(bad), { code: 'ERR_LOG_BAD_HEADER' });
  assert.throws(() => decodeLogHeader(new Uint8Array(64)), { code: 'ERR_LOG_BAD_MAGIC' });
  assert.throws(() => decodeLogHeader(h.subarray(0, 10)), { code: 'ERR_LOG_TRUNCATED' });
});

test('writer → reader: every frame, in order, with ports, sequence numbers and a footer', async () => {
  const p = file();
  const fs = frames(5000);
  const w = await writeLog(p, fs);
  assert.equal(w.records, 5000);
  const got = await readAll(p);
  assert.deepEqual(got.payloads, fs);
  assert.deepEqual(got.seqs, fs.map((_, i) => i));
  assert.deepEqual(got.ports, fs.map((_, i) => i % 2));
});

test('segments rotate by size; sequence numbers continue across them', async () => {
  const p = file();
  const fs = frames(3000);
  const w = await writeLog(p, fs, { segmentBytes: 100_000 });
  assert.ok(w.segments >= 5, `${w.segments} segments`);
  assert.equal(logSegments(p).length, w.segments);
  const got = await readAll(p);
  assert.deepEqual(got.payloads, fs);
  assert.deepEqual(got.seqs, fs.map((_, i) => i));
  for (const s of logSegments(p)) assert.ok(readFileSync(s).length <= 100_000 + recordBytes(400) * 2);
});

test('rotateNow closes the segment with its footer and starts the next at once; an empty segment is kept; every frame reads back in order', async () => {
  const p = file();
  const fs = frames(900);
  const w = await LogWriter.create(p);
  fs.slice(0, 300).forEach((f, i) => w.append(i % 2, 0, 0, f));
  assert.deepEqual(w.rotateNow(), { segment: 1, path: `${p}.1`, rotated: true });
  assert.deepEqual(w.rotateNow(), { segment: 1, path: `${p}.1`, rotated: false }, 'nothing written since: no empty segment');
  fs.slice(300).forEach((f, i) => w.append((300 + i) % 2, 0, 0, f));
  assert.equal(w.rotateNow().segment, 2);
  await w.close();
  assert.deepEqual(logSegments(p), [p, `${p}.1`, `${p}.2`]);
  const got = await readAll(p);
  assert.deepEqual(got.payloads, fs);
  assert.deepEqual(got.seqs, fs.map((_, i) => i));
  assert.throws(() => w.rotateNow(), { code: 'ERR_BAD_OPTION' });
});

test('sync policies: always syncs every group commit; parse errors are coded', async () => {
  const w = await writeLog(file(), frames(10), { sync: parseSyncPolicy('always') });
  assert.ok(w.syncs >= 1);
  assert.deepEqual(parseSyncPolicy('interval:5'), { kind: 'interval', ms: 5 });
  assert.throws(() => parseSyncPolicy('sometimes'), { code: 'ERR_BAD_OPTION' });
});

test('a torn tail is found, reported with the last good record, and repaired without inventing anything', async () => {
  const p = file();
  const fs = frames(100);
  await writeLog(p, fs);
  const whole = readFileSync(p);
  // Cut inside the 51st record (no footer either).
  let off = LOG_HEADER_BYTES;
  for (let i = 0; i < 50; i++) off += recordBytes(fs[i]!.length);
  writeFileSync(p, whole.subarray(0, off + 10));
  const s = await scanSegment(p);
  assert.equal(s.frames, 50);
  assert.equal(s.lastSeq, 49);
  assert.equal(s.goodEnd, off);
  assert.equal(s.damage?.code, 'ERR_LOG_TRUNCATED');
  await repairSegment(s);
  const got = await readAll(p);
  assert.deepEqual(got.payloads, fs.slice(0, 50));
  // A flipped bit in record 20: CRC stops the scan there.
  await writeLog(p, fs);
  const flip = readFileSync(p);
  let o20 = LOG_HEADER_BYTES;
  for (let i = 0; i < 20; i++) o20 += recordBytes(fs[i]!.length);
  flip[o20 + 30] = flip[o20 + 30]! ^ 0x10;
  writeFileSync(p, flip);
  const t = await scanSegment(p);
  assert.equal(t.frames, 20);
  assert.equal(t.damage?.code, 'ERR_LOG_BAD_RECORD');
  assert.equal(t.damage?.offset, o20);
});

test('log verify names the damage it found: ERR_LOG_TRUNCATED for a cut log, ERR_LOG_BAD_RECORD for a flipped bit', async () => {
  const p = file();
  const fs = frames(400);
  await writeLog(p, fs);
  const whole = readFileSync(p);
  writeFileSync(p, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const cut = await netrr(['log', 'verify', p]);
  assert.equal(cut.code, 65);
  assert.match(cut.stderr, /\[ERR_LOG_TRUNCATED\]$/m);
  const flipped = Uint8Array.from(whole);
  flipped[LOG_HEADER_BYTES + 40] = flipped[LOG_HEADER_BYTES + 40]! ^ 1;
  writeFileSync(p, flipped);
  const bad = await netrr(['log', 'verify', p]);
  assert.equal(bad.code, 65);
  assert.match(bad.stderr, /\[ERR_LOG_BAD_RECORD\]$/m);
  assert.equal((await netrr(['log', 'verify', '--repair', p])).code, 0);
  assert.equal((await netrr(['log', 'verify', p])).code, 0);
});

test('property: arbitrary bytes after a valid header only ever stop the parser with a coded error, within bounds', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 64 }), (junk, chunk) => {
      const p = new LogParser(LOG_HEADER_BYTES);
      let start = 0;
      let end = 0;
      const win = new Uint8Array(junk.length + 16);
      try {
        for (let i = 0; i < junk.length; i += chunk) {
          const part = junk.subarray(i, i + chunk);
          win.set(part, end);
          end += part.length;
          start = p.parse(win, start, end, () => {});
        }
      } catch (e) {
        assert.ok(e instanceof NetrrError && (e.code === 'ERR_LOG_BAD_RECORD'), String(e));
      }
      assert.ok(p.needBytes <= 16 * 1024 * 1024 + 28, 'never asks for more than the payload bound');
    }),
    { numRuns: 1000 },
  );
});

test('property: encode → parse is the identity on records', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ port: fc.nat(255), dir: fc.nat(1), seq: fc.nat(2 ** 40), ts: fc.nat(2 ** 50), payload: fc.uint8Array({ maxLength: 100 }) }), { maxLength: 20 }), (recs) => {
      const b = new Uint8Array(recs.reduce((s, r) => s + recordBytes(r.payload.length), 0));
      let o = 0;
      for (const r of recs) o = encodeRecordAt(b, o, { type: REC_FRAME, port: r.port, direction: r.dir, flags: 0, seq: r.seq, tsNs: r.ts, payload: r.payload });
      const got: unknown[] = [];
      const p = new LogParser(0);
      assert.equal(p.parse(b, 0, b.length, (x) => got.push([x.port, x.direction, x.seq, x.tsNs, [...x.payload]])), b.length);
      assert.deepEqual(got, recs.map((r) => [r.port, r.dir, r.seq, r.ts, [...r.payload]]));
    }),
  );
});
