// QEMU replay logs: synthetic logs of both decoded versions (every event kind),
// hostile input, and a real QEMU 7.2 recording of the test guest whose
// network events must be exactly what filter-dump saw toward the guest.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { NetrrError } from '../src/errors.ts';
import { EVENT_NAMES, QemuLogParser, parseQemuLogHeader } from '../src/codec/qemu-replay-log.ts';
import { readCaptureFile } from '../src/io/capture-file.ts';
import { scanQemuLog } from '../src/io/qemu-log-file.ts';
import { bootGuest, waitTask } from './helpers/guest.ts';
import { netrr, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-qlog-');
after(() => tmp.cleanup());

class LogBuilder {
  parts: number[] = [];
  constructor(version: number) {
    this.dword(version);
    this.qword(0);
  }
  byte(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  dword(v: number): this {
    this.parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }
  qword(v: number): this {
    return this.dword(Math.floor(v / 4294967296)).dword(v >>> 0);
  }
  array(b: number[]): this {
    this.dword(b.length);
    this.parts.push(...b);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function everyEvent(version: number): LogBuilder {
  const l = new LogBuilder(version);
  l.byte(0).dword(1000); // INSTRUCTION
  l.byte(1).byte(2); // INTERRUPT, EXCEPTION
  l.byte(3).qword(7).byte(4).qword(8); // BH, BH_ONESHOT
  l.byte(5).dword(0).dword(1).dword(30).byte(1); // INPUT key qcode
  l.byte(5).dword(0).dword(0).qword(30).byte(0); // INPUT key number
  l.byte(5).dword(1).dword(2).byte(1); // INPUT btn
  l.byte(5).dword(2).dword(0).qword(5); // INPUT rel
  l.byte(6); // INPUT_SYNC
  l.byte(7).byte(0).array([65, 66]); // CHAR_READ
  l.byte(8).qword(99); // BLOCK
  l.byte(0).dword(500);
  l.byte(9).byte(0).dword(0).array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 0]); // NET, filter 0
  l.byte(9).byte(1).dword(1).array([9, 9, 9]); // NET, filter 1, RAW
  l.byte(22).dword(5).dword(0); // CHAR_WRITE
  l.byte(23).array([1]); // CHAR_READ_ALL
  l.byte(24).dword(0xffffffff); // CHAR_READ_ALL_ERROR
  l.byte(25).dword(4); // AUDIO_OUT
  if (version === 0xe0200c) l.byte(26).qword(1).qword(0).qword(1).qword(2); // AUDIO_IN v12: recorded, wpos, 1 sample
  else l.byte(26).qword(2).qword(1).qword(2).qword(3).qword(4); // AUDIO_IN v13: n, 2 samples
  l.byte(27).dword(0).array([4, 4]); // RANDOM
  l.byte(28).qword(123456789).byte(29).qword(5); // CLOCK_HOST, CLOCK_VIRTUAL_RT
  for (let c = 30; c <= 38; c++) l.byte(c); // checkpoints
  l.byte(14); // SHUTDOWN_HOST_SIGNAL
  l.byte(39); // END
  return l;
}

for (const version of [0xe0200c, 0xe0200d]) {
  test(`version 0x${version.toString(16)}: every event kind decodes, instruction positions accumulate`, () => {
    const b = everyEvent(version).bytes();
    const h = parseQemuLogHeader(b);
    const seen: [string, number, number][] = [];
    for (const chunk of [1, 3, b.length]) {
      seen.length = 0;
      const q = new QemuLogParser(h.version);
      // Feed through a growing window one chunk at a time (events straddle chunk edges).
      let end = 12;
      let start = 12;
      while (end < b.length) {
        end = Math.min(b.length, end + chunk);
        start = q.parse(b, start, end, (e) => seen.push([EVENT_NAMES[e.id]!, e.icount, e.data.length]));
      }
      assert.ok(q.ended);
      assert.equal(q.icount, 1500);
    }
    const net = seen.filter((s) => s[0] === 'ASYNC_NET');
    assert.deepEqual(net, [['ASYNC_NET', 1500, 14], ['ASYNC_NET', 1500, 3]]);
    assert.equal(seen.at(-1)![0], 'END');
    assert.deepEqual(seen.map((x) => x[0]), [
      'INSTRUCTION', 'INTERRUPT', 'EXCEPTION', 'ASYNC_BH', 'ASYNC_BH_ONESHOT',
      'ASYNC_INPUT', 'ASYNC_INPUT', 'ASYNC_INPUT', 'ASYNC_INPUT', 'ASYNC_INPUT_SYNC', 'ASYNC_CHAR_READ', 'ASYNC_BLOCK',
      'INSTRUCTION', 'ASYNC_NET', 'ASYNC_NET', 'CHAR_WRITE', 'CHAR_READ_ALL', 'CHAR_READ_ALL_ERROR', 'AUDIO_OUT', 'AUDIO_IN', 'RANDOM',
      'CLOCK_HOST', 'CLOCK_VIRTUAL_RT',
      'CHECKPOINT_CLOCK_WARP_START', 'CHECKPOINT_CLOCK_WARP_ACCOUNT', 'CHECKPOINT_RESET_REQUESTED', 'CHECKPOINT_SUSPEND_REQUESTED',
      'CHECKPOINT_CLOCK_VIRTUAL', 'CHECKPOINT_CLOCK_HOST', 'CHECKPOINT_CLOCK_VIRTUAL_RT', 'CHECKPOINT_INIT', 'CHECKPOINT_RESET',
      'SHUTDOWN_HOST_SIGNAL', 'END',
    ]);
  });
}

test('header problems are reported clearly: killed recording, older and unknown versions', () => {
  const zero = new Uint8Array(20);
  assert.throws(() => parseQemuLogHeader(zero), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_QEMU_LOG_NO_HEADER' && /killed/.test(e.message));
  assert.equal(parseQemuLogHeader(zero, 0xe0200c).version, 0xe0200c);
  assert.throws(() => parseQemuLogHeader(new LogBuilder(0xe0200a).bytes()), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_QEMU_LOG_VERSION' && /QEMU ≤ 7\.0/.test(e.message));
  assert.throws(() => parseQemuLogHeader(new LogBuilder(0x12345678).bytes()), { code: 'ERR_QEMU_LOG_VERSION' });
  assert.throws(() => parseQemuLogHeader(new Uint8Array(5)), { code: 'ERR_QEMU_LOG_TRUNCATED' });
});

test('property: arbitrary event bytes only ever stop the parser with a coded error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
      const b = new Uint8Array(12 + junk.length);
      b.set(new LogBuilder(0xe0200c).bytes());
      b.set(junk, 12);
      const p = new QemuLogParser(0xe0200c);
      try {
        p.parse(b, 12, b.length, () => {});
      } catch (e) {
        assert.ok(e instanceof NetrrError && e.code === 'ERR_QEMU_LOG_BAD_EVENT', String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

test("real QEMU 7.2 rr recording of the guest: export = filter-dump's to-guest frames; a killed recording is reported, not misread", async () => {
  const d = join(tmp.path, 'rr');
  mkdirSync(d);
  const server = net.createServer((c) => c.on('data', (x) => c.end(`echo:${x.toString()}`)).on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const rrArgs = (file: string, dump: string): string[] => [
    '-icount', `shift=auto,rr=record,rrfile=${file}`,
    '-netdev', 'user,id=n1', '-device', 'virtio-net-pci,netdev=n1,romfile=,tx=timer',
    '-object', 'filter-replay,id=r1,netdev=n1', '-object', `filter-dump,id=d1,netdev=n1,file=${dump}`,
  ];
  try {
    const log = join(d, 'rec.bin');
    const dump = join(d, 'dump.pcap');
    const g = bootGuest('tcp-echo', rrArgs(log, dump), `netrr.port=${port}`);
    const serial = await waitTask(g, 120_000);
    await g.done;
    assert.match(serial, /echo:guest line 3/, serial);
    const info = JSON.parse((await netrr(['qemu-log', 'info', log, '--json'])).stdout) as { version: string; ended: boolean; instructions: number; counts: Record<string, number> };
    assert.equal(info.version, '0xe0200c');
    assert.ok(info.ended);
    assert.ok(info.instructions > 1e6);
    const pcap = join(d, 'net.pcapng');
    const x = await netrr(['qemu-log', 'export', log, pcap]);
    assert.equal(x.code, 0, x.stderr);
    const exported: string[] = [];
    await readCaptureFile(pcap, (r) => exported.push(Buffer.from(r.data).toString('hex')));
    const toGuest: string[] = [];
    await readCaptureFile(dump, (r) => {
      // filter-dump sees both directions; the guest's own frames carry its MAC as source.
      const h = Buffer.from(r.data).toString('hex');
      if (h.slice(12, 24) !== '525400123456') toGuest.push(h);
    });
    assert.ok(exported.length >= 10, `${exported.length} network events`);
    assert.equal(info.counts.ASYNC_NET, exported.length);
    assert.deepEqual(exported, toGuest, 'byte-identical and in order');
    // A recording killed before replay_finish: zero header, reported with its cause.
    const killedLog = join(d, 'killed.bin');
    const k = bootGuest('tcp-echo', rrArgs(killedLog, join(d, 'killed.pcap')), `netrr.port=${port}`);
    await new Promise((r) => setTimeout(r, 2500));
    k.child.kill('SIGKILL');
    await k.done;
    const r = await netrr(['qemu-log', 'info', killedLog]);
    assert.equal(r.code, 65);
    assert.match(r.stderr, /header was never written.*killed.*\[ERR_QEMU_LOG_NO_HEADER\]/);
    const assumed = await netrr(['qemu-log', 'info', killedLog, '--assume-version', '0xe0200c']);
    assert.ok(assumed.code === 0 || /\[ERR_QEMU_LOG_(TRUNCATED|BAD_EVENT)\]\n$/.test(assumed.stderr), assumed.stderr);
  } finally {
    server.close();
  }
});

test('scanQemuLog refuses a file cut inside an event', async () => {
  const b = everyEvent(0xe0200c).bytes();
  const f = join(tmp.path, 'cut.bin');
  writeFileSync(f, b.subarray(0, b.length - 30));
  await assert.rejects(scanQemuLog(f, () => {}), { code: 'ERR_QEMU_LOG_TRUNCATED' });
});
