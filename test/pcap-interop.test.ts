// Our capture files against Wireshark's own tools, and theirs against us.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readCaptureFile } from '../src/io/capture-file.ts';
import { formatEpoch } from '../src/pcap/capture-record.ts';
import { readPacketOptions } from '../src/pcap/pcapng-format.ts';
import { PcapWriter } from '../src/pcap/pcap-writer.ts';
import { PcapngWriter } from '../src/pcap/pcapng-writer.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { SHARED_DIR, netrr, run, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

interface Pkt {
  time: string;
  len: number;
  hex: string;
  comments: string[];
  flags: number;
}

async function readOurs(file: string): Promise<Pkt[]> {
  const out: Pkt[] = [];
  await readCaptureFile(file, (r) => {
    out.push({
      time: formatEpoch(r.tsSec, r.tsNsec),
      len: r.originalLength,
      hex: Buffer.from(r.data).toString('hex'),
      comments: readPacketOptions(r.options, r.littleEndian).comments,
      flags: r.flags,
    });
  });
  return out;
}

const frames = [
  buildFrame({ proto: 'udp', payload: 'one' }),
  buildFrame({ proto: 'tcp', payload: 'two two', tcpOptions: [2, 4, 5, 0xb4] }),
  buildFrame({ ip: 6, proto: 'icmp', payload: 'three' }),
];

test('our pcapng opens cleanly in capinfos and tshark, with comments, direction and interface names', async () => {
  const w = new PcapngWriter({ comment: 'netrr interop test' });
  w.addInterface({ linkType: 1, name: 'primary', description: 'primary_in' });
  w.addInterface({ linkType: 1, name: 'secondary', description: 'secondary_in' });
  frames.forEach((f, i) => w.writePacket(i % 2, 1_700_000_000 + i, 123_456_789, f, f.length, { flags: i % 2 === 0 ? 1 : 2, comments: [`verdict=${i}`], custom: [`epoch=${i}`] }));
  const file = join(tmp.path, 'ours.pcapng');
  writeFileSync(file, w.out.take()!);
  const cap = await run('capinfos', [file]);
  assert.equal(cap.code, 0, cap.stderr);
  assert.equal(cap.stderr, '');
  assert.match(cap.stdout, /Number of packets:\s+3/);
  assert.match(cap.stdout, /Capture comment:\s+netrr interop test/);
  assert.match(cap.stdout, /Name = secondary/);
  const t = await run('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.comment', '-e', 'frame.packet_flags_direction', '-e', 'frame.interface_name', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'ip.proto', '-e', 'ipv6.nxt', '-e', 'udp.checksum.status', '-e', 'tcp.checksum.status']);
  assert.equal(t.code, 0);
  assert.equal(tsharkStderr(t.stderr), '');
  const rows = t.stdout.trim().split('\n').map((l) => l.split('|'));
  assert.deepEqual(rows.map((r) => r[0]), ['verdict=0', 'verdict=1', 'verdict=2']);
  assert.deepEqual(rows.map((r) => Number(r[1])), [1, 2, 1]);
  assert.deepEqual(rows.map((r) => r[2]), ['primary', 'secondary', 'primary']);
  assert.deepEqual(rows.map((r) => r[3]), ['1700000000.123456789', '1700000001.123456789', '1700000002.123456789']);
  assert.deepEqual(rows.map((r) => Number(r[4])), frames.map((f) => f.length));
});

test('our checksums verify in tshark (checksum validation on)', async () => {
  const w = new PcapWriter(1);
  for (const f of frames) w.writePacket(1, 0, f);
  const file = join(tmp.path, 'sums.pcap');
  writeFileSync(file, w.out.take()!);
  const t = await run('tshark', ['-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status', '-e', 'tcp.checksum.status', '-e', 'icmpv6.checksum.status']);
  assert.equal(t.code, 0);
  // Wireshark's checksum status values: 0 bad, 1 good, 2 unverified.
  const statuses = t.stdout.trim().split('\n').map((l) => l.split('\t').filter((x) => x !== ''));
  assert.deepEqual(statuses, [['1', '1'], ['1', '1'], ['1']]);
});

test('text2pcap output (pcap and pcapng) reads back byte-identical', async () => {
  const dump = frames
    .map((f) => {
      let s = '';
      for (let o = 0; o < f.length; o += 16) {
        s += `${o.toString(16).padStart(6, '0')} ${Buffer.from(f.subarray(o, o + 16)).toString('hex').replace(/(..)/g, '$1 ')}\n`;
      }
      return s;
    })
    .join('\n');
  const txt = join(tmp.path, 'frames.txt');
  writeFileSync(txt, dump);
  for (const ng of [false, true]) {
    const out = join(tmp.path, ng ? 't2p.pcapng' : 't2p.pcap');
    const r = await run('text2pcap', [...(ng ? ['-n'] : []), '-q', txt, out]);
    assert.equal(r.code, 0, r.stderr);
    const got = await readOurs(out);
    assert.deepEqual(got.map((p) => p.hex), frames.map((f) => Buffer.from(f).toString('hex')));
  }
});

test('editcap conversions (pcapng, pcap, nsec pcap) read back as the same packets', async () => {
  const w = new PcapngWriter();
  w.addInterface({ linkType: 1 });
  frames.forEach((f, i) => w.writePacket(0, 1_600_000_000 + i, i * 1000 + 7, f, f.length + i));
  const src = join(tmp.path, 'src.pcapng');
  writeFileSync(src, w.out.take()!);
  const ours = await readOurs(src);
  for (const [fmt, ext] of [['pcap', 'pcap'], ['nsecpcap', 'pcap'], ['pcapng', 'pcapng']] as const) {
    const out = join(tmp.path, `editcap-${fmt}.${ext}`);
    const r = await run('editcap', ['-F', fmt, src, out]);
    assert.equal(r.code, 0, r.stderr);
    const got = await readOurs(out);
    assert.deepEqual(got.map((p) => [p.hex, p.len]), ours.map((p) => [p.hex, p.len]), fmt);
    // µs pcap keeps only microseconds.
    const times = ours.map((p) => (fmt === 'pcap' ? `${p.time.slice(0, -3)}000` : p.time));
    assert.deepEqual(got.map((p) => p.time), times, fmt);
  }
});

test('netrr pcap convert: pcap → pcapng → pcap keeps every packet; capinfos is clean', async () => {
  const src = join(SHARED_DIR, 'corpus/tcpdump-captures/802.1ad_QinQ.pcap');
  const ng = join(tmp.path, 'conv.pcapng');
  const back = join(tmp.path, 'conv.pcap');
  const a = await netrr(['pcap', 'convert', src, ng]);
  assert.equal(a.code, 0, a.stderr);
  const b = await netrr(['pcap', 'convert', ng, back, '--to', 'pcap']);
  assert.equal(b.code, 0, b.stderr);
  for (const f of [ng, back]) {
    const c = await run('capinfos', [f]);
    assert.equal(c.code, 0);
    assert.equal(c.stderr, '');
  }
  const orig = await readOurs(src);
  assert.ok(orig.length > 0);
  assert.deepEqual((await readOurs(ng)).map((p) => [p.hex, p.len, p.time]), orig.map((p) => [p.hex, p.len, p.time]));
  assert.deepEqual((await readOurs(back)).map((p) => [p.hex, p.len, p.time]), orig.map((p) => [p.hex, p.len, p.time]));
  const info = await netrr(['pcap', 'info', ng, '--json']);
  const j = JSON.parse(info.stdout) as { format: string; packets: number };
  assert.equal(j.format, 'pcapng');
  assert.equal(j.packets, orig.length);
  assert.ok(readFileSync(ng).length > 0);
});
