// Interop with real QEMU 7.2: frames we encode are accepted by QEMU, frames
// QEMU emits are decoded byte-exactly, through colo-compare (with and without
// vnet headers, plus the Xen notify channel), -netdev stream, -netdev socket,
// -netdev dgram, filter-dump and a slirp outside world.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FrameDecoder } from '../src/codec/qemu-framing.ts';
import { encodeNotify, parseNotify, type NotifyMessage } from '../src/codec/xen-notify.ts';
import { readCaptureFile } from '../src/io/capture-file.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { formatEpoch } from '../src/pcap/capture-record.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { Qemu } from './helpers/qemu.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { run, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir('netrr-qemu-');
after(() => tmp.cleanup());
let seq = 0;
const dir = (): string => {
  const d = join(tmp.path, `q${seq++}`);
  return d;
};

function collect(ep: FrameEndpoint): { frames: Uint8Array[]; vnet: number[] } {
  const out = { frames: [] as Uint8Array[], vnet: [] as number[] };
  ep.onFrame = (f, v) => {
    out.frames.push(Uint8Array.from(f));
    out.vnet.push(v);
  };
  return out;
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function coloCompare(vnet: boolean): Promise<{ q: Qemu; d: string; eps: Record<'pri' | 'sec' | 'out' | 'notify', FrameEndpoint> }> {
  const d = dir();
  await import('node:fs').then((fs) => fs.mkdirSync(d));
  const names = ['pri', 'sec', 'out', 'notify'] as const;
  const args = ['-object', 'iothread,id=iot1'];
  for (const n of names) args.push('-chardev', `socket,id=${n},path=${d}/${n}.sock,server=on,wait=off`);
  args.push('-object', `colo-compare,id=c0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iot1,notify_dev=notify${vnet ? ',vnet_hdr_support=on' : ''}`);
  const q = new Qemu(args);
  await q.waitForSockets(names.map((n) => `${d}/${n}.sock`));
  const v = vnet ? ',vnet-hdr=on' : '';
  // The notify channel carries a vnet field only toward QEMU (reference colo-proxy.md §8.9);
  // we send no notify records in vnet mode except the INIT, written raw below.
  const eps = {
    out: createEndpoint(`unix:${d}/out.sock${v}`),
    notify: createEndpoint(`unix:${d}/notify.sock`),
    pri: createEndpoint(`unix:${d}/pri.sock${v}`),
    sec: createEndpoint(`unix:${d}/sec.sock${v}`),
  };
  // QEMU drops output while out has no client: connect it first.
  for (const n of ['out', 'notify', 'pri', 'sec'] as const) {
    await eps[n].start();
    await eps[n].waitConnected(5000);
  }
  // Our connect() returning does not mean QEMU has accepted yet: prove the
  // out path works with an ARP on primary_in (forwarded uncompared), retried.
  let seen = 0;
  eps.out.onFrame = () => seen++;
  const vlen = vnet ? 10 : 0;
  const arp = new Uint8Array(vlen + 42);
  arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1], vlen);
  for (let i = 0; i < 50 && seen === 0; i++) {
    eps.pri.send(arp, vlen);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(seen > 0, 'colo-compare forwards a primary ARP to out');
  await new Promise((r) => setTimeout(r, 100));
  return { q, d, eps };
}

async function teardown(q: Qemu, eps: Record<string, FrameEndpoint>): Promise<void> {
  for (const ep of Object.values(eps)) await ep.close();
  await q.stop();
}

for (const vnet of [false, true]) {
  test(`colo-compare (vnet_hdr_support=${vnet ? 'on' : 'off'}): identical UDP on both inputs comes out once, byte-exact`, async () => {
    const { q, eps } = await coloCompare(vnet);
    try {
      const out = collect(eps.out);
      const vlen = vnet ? 10 : 0;
      const frames = Array.from({ length: 20 }, (_, i) => {
        const eth = buildFrame({ proto: 'udp', srcPort: 4000 + (i % 3), payload: `payload ${i}` });
        if (!vnet) return eth;
        const f = new Uint8Array(vlen + eth.length);
        f[0] = 2; // VIRTIO_NET_HDR_F_DATA_VALID: a recognisable header
        f.set(eth, vlen);
        return f;
      });
      for (const f of frames) {
        assert.ok(eps.pri.send(f, vlen));
        assert.ok(eps.sec.send(f, vlen));
        // One pair at a time: colo-compare 7.2 releases per-connection UDP newest-first (LIFO) when several queue up.
        await waitFor(() => out.frames.length === frames.indexOf(f) + 1, 5000, `release of frame ${frames.indexOf(f)} (got ${out.frames.length}: ${JSON.stringify(eps.out.counters)})`);
      }
      assert.deepEqual(out.frames, frames);
      assert.deepEqual(out.vnet, frames.map(() => vlen));
      const v = new PacketView().decode(out.frames[3]!, 1, vlen);
      assert.equal(v.srcPort, 4000);
      assert.equal(v.malformed, null);
    } finally {
      await teardown(q, eps);
    }
  });
}

test('colo-compare Xen notify protocol: INIT handshake, DO_CHECKPOINT on divergence, COLO_CHECKPOINT flushes', async () => {
  const { q, eps } = await coloCompare(false);
  try {
    const out = collect(eps.out);
    const notes: NotifyMessage[] = [];
    eps.notify.onFrame = (f) => notes.push(parseNotify(f));
    const sendNotify = (m: NotifyMessage): void => {
      // encodeNotify yields a whole record; strip our framing to hand the payload to the endpoint.
      const rec = encodeNotify(m);
      eps.notify.send(rec.subarray(4), 0);
    };
    sendNotify('COLO_USERSPACE_PROXY_INIT');
    await waitFor(() => notes.includes('COLO_COMPARE_GET_XEN_INIT'), 5000, 'GET_XEN_INIT');
    const p = buildFrame({ proto: 'udp', payload: 'primary says A' });
    const s = buildFrame({ proto: 'udp', payload: 'secondary says B' });
    eps.pri.send(p, 0);
    eps.sec.send(s, 0);
    await waitFor(() => notes.includes('DO_CHECKPOINT'), 5000, 'DO_CHECKPOINT');
    assert.equal(out.frames.length, 0, 'divergent primary is held');
    sendNotify('COLO_CHECKPOINT');
    await waitFor(() => out.frames.length === 1, 5000, 'flush on COLO_CHECKPOINT');
    assert.deepEqual(out.frames[0], p);
    // ARP on primary_in is forwarded uncompared.
    const arp = new Uint8Array(42);
    arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    eps.pri.send(arp, 0);
    await waitFor(() => out.frames.length === 2, 5000, 'ARP passthrough');
    assert.deepEqual(out.frames[1], arp);
  } finally {
    await teardown(q, eps);
  }
});

test('-netdev stream (server, unix) through a hub: frames both ways byte-exact; filter-dump pcap reads as tshark reads it', async () => {
  const d = dir();
  (await import('node:fs')).mkdirSync(d);
  const dump = join(d, 'dump.pcap');
  const q = new Qemu([
    '-netdev', `stream,id=s0,server=on,addr.type=unix,addr.path=${d}/a.sock`, '-netdev', 'hubport,id=h0,hubid=0,netdev=s0',
    '-netdev', `stream,id=s1,server=on,addr.type=unix,addr.path=${d}/b.sock`, '-netdev', 'hubport,id=h1,hubid=0,netdev=s1',
    '-object', `filter-dump,id=f0,netdev=s1,file=${dump}`,
  ]);
  const a = createEndpoint(`unix:${d}/a.sock`);
  const b = createEndpoint(`unix:${d}/b.sock`);
  try {
    await q.waitForSockets([`${d}/a.sock`, `${d}/b.sock`]);
    const atA = collect(a);
    const atB = collect(b);
    for (const ep of [a, b]) {
      await ep.start();
      await ep.waitConnected(5000);
    }
    // QEMU marks a stream netdev's link up only once connected; give the hub a moment.
    await new Promise((r) => setTimeout(r, 200));
    const fromA = Array.from({ length: 50 }, (_, i) => buildFrame({ proto: i % 2 ? 'tcp' : 'udp', payload: 'x'.repeat(i * 25) }));
    const fromB = Array.from({ length: 30 }, (_, i) => buildFrame({ ip: 6, proto: 'udp', payload: 'y'.repeat(i * 40 + 1) }));
    for (const f of fromA) a.send(f, 0);
    for (const f of fromB) b.send(f, 0);
    await waitFor(() => atB.frames.length === fromA.length && atA.frames.length === fromB.length, 10_000, 'hub delivery');
    assert.deepEqual(atB.frames, fromA);
    assert.deepEqual(atA.frames, fromB);
    // A jumbo frame near the limit also crosses intact.
    const big = buildFrame({ proto: 'udp', payload: new Uint8Array(60_000).fill(0xab) });
    a.send(big, 0);
    await waitFor(() => atB.frames.length === fromA.length + 1, 10_000, 'big frame');
    assert.deepEqual(atB.frames.at(-1), big);
  } finally {
    await a.close();
    await b.close();
    await q.stop();
  }
  // filter-dump on s1 saw both directions: what B sent and what went to B.
  const ours: { time: string; len: number; cap: number; hex: string }[] = [];
  await readCaptureFile(dump, (r) => ours.push({ time: formatEpoch(r.tsSec, r.tsNsec), len: r.originalLength, cap: r.capturedLength, hex: Buffer.from(r.data).toString('hex') }));
  assert.equal(ours.length, 50 + 30 + 1);
  const t = await run('tshark', ['-r', dump, '-T', 'json', '-x']);
  assert.equal(t.code, 0);
  assert.equal(tsharkStderr(t.stderr), '');
  type Layers = { frame: Record<string, string>; frame_raw: [string, ...unknown[]] };
  const theirs = (JSON.parse(t.stdout) as { _source: { layers: Layers } }[]).map((p) => p._source.layers);
  assert.equal(theirs.length, ours.length);
  theirs.forEach((l, i) => {
    const o = ours[i]!;
    const [sec, frac = ''] = l.frame['frame.time_epoch']!.split('.');
    assert.equal(o.time, `${sec}.${frac.padEnd(9, '0')}`);
    assert.equal(String(o.len), l.frame['frame.len']);
    assert.equal(String(o.cap), l.frame['frame.cap_len']);
    assert.equal(o.hex, l.frame_raw[0]);
  });
  assert.ok(readFileSync(dump).length > 24);
});

test('-netdev socket (TCP listen) and -netdev dgram (UDP) peers, bridged by a hub', async () => {
  const tcpPort = await freePort();
  const qemuUdp = await freePort();
  const ourUdp = await freePort();
  const q = new Qemu([
    '-netdev', `socket,id=t0,listen=127.0.0.1:${tcpPort}`, '-netdev', 'hubport,id=h0,hubid=0,netdev=t0',
    '-netdev', `dgram,id=u0,local.type=inet,local.host=127.0.0.1,local.port=${qemuUdp},remote.type=inet,remote.host=127.0.0.1,remote.port=${ourUdp}`,
    '-netdev', 'hubport,id=h1,hubid=0,netdev=u0',
  ]);
  const tcp = createEndpoint(`tcp:127.0.0.1:${tcpPort},reconnect-ms=200`);
  const udp = createEndpoint(`udp:127.0.0.1:${ourUdp},remote=127.0.0.1:${qemuUdp}`);
  try {
    const atTcp = collect(tcp);
    const atUdp = collect(udp);
    await udp.start();
    await tcp.start();
    await tcp.waitConnected(10_000);
    await new Promise((r) => setTimeout(r, 200));
    const down = Array.from({ length: 40 }, (_, i) => buildFrame({ proto: 'udp', payload: `tcp→udp ${i}` }));
    const up = Array.from({ length: 40 }, (_, i) => buildFrame({ proto: 'tcp', payload: `udp→tcp ${i}`.repeat(i + 1) }));
    for (const f of down) tcp.send(f, 0);
    await waitFor(() => atUdp.frames.length === down.length, 10_000, 'tcp → dgram');
    for (const f of up) {
      udp.send(f, 0);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => atTcp.frames.length === up.length, 10_000, 'dgram → tcp');
    assert.deepEqual(atUdp.frames, down);
    assert.deepEqual(atTcp.frames, up);
    assert.equal(udp.counters.rxDrops.zeroLength, 0);
  } finally {
    await tcp.close();
    await udp.close();
    await q.stop();
  }
});
