// netrr chain over real sockets: a scripted guest and a scripted network on
// either side, a test controller on the control socket. Output held in epochs
// reaches the network only at its commit, whole, in order, once; an aborted
// epoch never does; each overflow policy behaves as documented with every
// frame accounted for; sch_plug and interval modes; a dump that tshark reads
// with both directions; validation before anything opens.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import { type CounterTree, counterLeaves } from '../src/engine/counter-tree.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { buildFrame, clientGuestSegment } from './helpers/build-packet.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, netrr, run, start, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir('netrr-chain-');
after(() => tmp.cleanup());
let n = 0;

const numbered = (i: number, bytes = 200): Uint8Array => buildFrame({ proto: 'udp', srcPort: 4000 + (i % 8), payload: `#${i}#`.padEnd(bytes - 42, '.') });
const indexOf = (f: Uint8Array): number => Number(/#(\d+)#/.exec(Buffer.from(f.subarray(42, 62)).toString('latin1'))![1]);

interface Rig {
  d: string;
  proc: ReturnType<typeof start>;
  guest: FrameEndpoint;
  net: FrameEndpoint;
  atNet: number[];
  atGuest: number[];
  ctl: ControlClient;
  events: { event: string; data: Record<string, unknown> }[];
  filter(id: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function rig(filters: string[]): Promise<Rig> {
  const d = join(tmp.path, `c${n++}`);
  mkdirSync(d);
  const args = ['chain', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/n.sock,server=on`, '--control', `unix:${d}/ctl.sock`];
  for (const f of filters) args.push('-f', f.replaceAll('$D', d));
  const proc = start(process.execPath, [NETRR_BIN, ...args]);
  await waitFor(() => proc.child.exitCode !== null || ['g', 'n', 'ctl'].every((s) => existsSync(`${d}/${s}.sock`)), 10_000, 'chain sockets');
  assert.equal(proc.child.exitCode, null, proc.out());
  const guest = createEndpoint(`unix:${d}/g.sock`);
  const net = createEndpoint(`unix:${d}/n.sock`);
  const atNet: number[] = [];
  const atGuest: number[] = [];
  net.onFrame = (f) => atNet.push(indexOf(f));
  guest.onFrame = (f) => atGuest.push(indexOf(f));
  for (const ep of [guest, net]) {
    await ep.start();
    await ep.waitConnected(5000);
  }
  const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
  const events: Rig['events'] = [];
  ctl.onEvent = (e) => events.push({ event: e.event, data: e.data as Record<string, unknown> });
  for (;;) {
    const st = (await ctl.execute('query-status')) as { endpoints: { connected: boolean }[] };
    if (st.endpoints.every((e) => e.connected)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    d,
    proc,
    guest,
    net,
    atNet,
    atGuest,
    ctl,
    events,
    filter: async (id) => ((await ctl.execute('query-filters')) as Record<string, unknown>[]).find((f) => f.id === id)!,
    stop: async () => {
      await ctl.execute('quit');
      await waitFor(() => proc.child.exitCode !== null, 15_000, 'chain exits');
      assert.equal(proc.child.exitCode, 0, proc.out());
      ctl.close();
      await guest.close();
      await net.close();
    },
  };
}

/** Sends frames first..first+count-1 from `ep`, waiting while it is above its high-water mark (so the sender drops nothing). */
async function send(ep: FrameEndpoint, first: number, count: number, bytes: number | ((i: number) => number) = 200): Promise<void> {
  for (let i = first; i < first + count; i++) {
    if (!ep.writable) await waitFor(() => ep.writable, 30_000, 'sender writable');
    assert.ok(ep.send(numbered(i, typeof bytes === 'number' ? bytes : bytes(i)), 0));
  }
  await waitFor(() => ep.counters.txQueuedFrames === 0, 30_000, 'sent');
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

test('epochs: the network sees no guest frame before its epoch commits, then every one in order once; an aborted epoch never; dump in tshark', async () => {
  const r = await rig(['dump,id=d,file=$D/dump.pcapng', 'buffer,id=ob,queue=rx']);
  await send(r.guest, 0, 3000);
  assert.deepEqual(await r.ctl.execute('epoch-begin'), { epoch: 2, closed: 1 });
  await send(r.guest, 3000, 2000);
  let f = await r.filter('ob');
  for (let k = 0; f.backlogFrames !== 5000 && k < 500; k++) f = await r.filter('ob');
  assert.equal(f.backlogFrames, 5000);
  assert.equal(r.atNet.length, 0, 'nothing before a commit');
  assert.deepEqual(await r.ctl.execute('epoch-commit', { epoch: 1 }), { epoch: 1, released: 3000 });
  await waitFor(() => r.atNet.length === 3000, 10_000, 'epoch 1 at the network');
  assert.deepEqual(r.atNet, range(0, 3000));
  assert.deepEqual(await r.ctl.execute('epoch-abort', { epoch: 2 }), { epoch: 2, dropped: 2000, open: 3 });
  await send(r.guest, 5000, 1000);
  await r.ctl.execute('epoch-begin');
  await r.ctl.execute('epoch-commit', { epoch: 3 });
  await waitFor(() => r.atNet.length === 4000, 10_000, 'epoch 3 at the network');
  assert.deepEqual(r.atNet, [...range(0, 3000), ...range(5000, 6000)]);
  // The network's frames pass toward the guest untouched (queue=rx).
  await send(r.net, 100_000, 500);
  await waitFor(() => r.atGuest.length === 500, 10_000, 'network → guest');
  assert.deepEqual(r.atGuest, range(100_000, 100_500));
  f = await r.filter('ob');
  assert.equal(f.enqueued, 6000);
  assert.equal(f.released, 4000);
  assert.deepEqual(f.dropped, { overlimit: 0, hardLimit: 0, aborted: 2000 });
  assert.equal((f.holdTime as { count: number }).count, 4000);
  assert.ok(r.events.some((e) => e.event === 'EPOCH_COMMITTED' && e.data.epoch === 1 && e.data.frames === 3000));
  assert.ok(r.events.some((e) => e.event === 'EPOCH_ABORTED' && e.data.epoch === 2 && e.data.frames === 2000));
  // query-counters: numbers only, the same books as query-status, the filters by id.
  const tree = (await r.ctl.execute('query-counters')) as CounterTree;
  const leaves = counterLeaves(tree);
  assert.ok(leaves.length > 40 && leaves.every(([, v]) => typeof v === 'number'));
  const at = (path: string): number | undefined => leaves.find(([k]) => k === path)?.[1];
  assert.equal(at('filters.ob.enqueued'), 6000);
  assert.equal(at('filters.ob.dropped.aborted'), 2000);
  assert.equal(at('filters.ob.holdTime.count'), 4000);
  assert.equal(at('guest.rxFrames'), 6000);
  assert.equal(at('network.txFrames'), 4000);
  assert.equal(at('network.port.sent'), 4000);
  assert.equal(at('filters.d.captured'), 4500);
  assert.equal(at('deliveredToNetwork'), 4000);
  assert.equal(leaves.some(([k]) => k.includes('limits.') || k.endsWith('maxlen') || k.includes('highWater')), false, 'no configuration among the counters');
  await r.stop();
  const t = await run('tshark', ['-r', `${r.d}/dump.pcapng`, '-T', 'fields', '-e', 'frame.interface_name']);
  assert.equal(tsharkStderr(t.stderr), '');
  const names = t.stdout.trim().split('\n');
  assert.equal(names.filter((x) => x === 'from-guest').length, 4000, 'the dump sits after the buffer: it sees what was released');
  assert.equal(names.filter((x) => x === 'to-guest').length, 500);
});

test('overflow backpressure: the guest is paused at the limit, nothing is dropped, 30 000 frames arrive once in order under a committing controller', async () => {
  const r = await rig(['buffer,id=ob,queue=rx,limit-frames=1000,overflow=backpressure']);
  const N = 30_000;
  const sending = send(r.guest, 0, N, 600);
  // A controller: begin and commit as fast as it can.
  while (r.atNet.length < N) {
    const { closed } = (await r.ctl.execute('epoch-begin')) as { closed: number };
    await r.ctl.execute('epoch-commit', { epoch: closed });
    if (r.proc.child.exitCode !== null) throw new Error(r.proc.out());
  }
  await sending;
  assert.deepEqual(r.atNet, range(0, N));
  const f = await r.filter('ob');
  assert.deepEqual(f.dropped, { overlimit: 0, hardLimit: 0, aborted: 0 });
  assert.ok(r.events.some((e) => e.event === 'BUFFER_OVERFLOW' && e.data.on === true), 'the limit was reached');
  await r.stop();
});

test('overflow drop-tail drops and counts the newest; overflow checkpoint asks for a checkpoint and keeps them', async () => {
  const dt = await rig(['buffer,id=ob,queue=rx,limit-frames=100']);
  await send(dt.guest, 0, 500);
  let f = await dt.filter('ob');
  for (let k = 0; (f.enqueued as number) < 500 && k < 500; k++) f = await dt.filter('ob');
  await dt.ctl.execute('epoch-begin');
  await dt.ctl.execute('epoch-commit', { epoch: 1 });
  await waitFor(() => dt.atNet.length === 100, 5000, 'the first 100');
  f = await dt.filter('ob');
  assert.deepEqual(dt.atNet, range(0, 100));
  assert.equal((f.dropped as { overlimit: number }).overlimit, 400);
  await dt.stop();
  const cp = await rig(['buffer,id=ob,queue=rx,limit-frames=100,overflow=checkpoint']);
  await send(cp.guest, 0, 500);
  await waitFor(() => cp.events.some((e) => e.event === 'CHECKPOINT_REQUEST' && e.data.cause === 'buffer-overflow'), 5000, 'checkpoint request');
  await cp.ctl.execute('epoch-begin');
  await cp.ctl.execute('epoch-commit', { epoch: 1 });
  await waitFor(() => cp.atNet.length === 500, 5000, 'all 500 kept and released');
  assert.deepEqual(cp.atNet, range(0, 500));
  await cp.stop();
});

test('sch_plug mode through the control socket, interval mode on its own timer, failover turns a buffer off and releases', async () => {
  const p = await rig(['buffer,id=pl,mode=plug,queue=rx']);
  await send(p.guest, 0, 10);
  await p.ctl.execute('buffer-plug');
  await send(p.guest, 10, 5);
  assert.deepEqual(await p.ctl.execute('buffer-release-one'), { released: 10 });
  await waitFor(() => p.atNet.length === 10, 5000, 'first epoch');
  assert.deepEqual(await p.ctl.execute('buffer-release-indefinite'), { released: 5 });
  await send(p.guest, 15, 5);
  await waitFor(() => p.atNet.length === 20, 5000, 'indefinite: straight through');
  assert.deepEqual(p.atNet, range(0, 20));
  await p.stop();
  const iv = await rig(['buffer,id=iv,mode=interval,interval=20000,queue=rx']);
  await send(iv.guest, 0, 2000);
  await waitFor(() => iv.atNet.length === 2000, 5000, 'released by the 20 ms timer');
  assert.deepEqual(iv.atNet, range(0, 2000));
  await iv.stop();
  const fo = await rig(['buffer,id=ob,queue=rx']);
  await send(fo.guest, 0, 300);
  await fo.ctl.execute('colo-event', { event: 'failover' });
  await waitFor(() => fo.atNet.length === 300, 5000, 'released at failover');
  assert.equal((await fo.filter('ob')).status, 'off');
  await send(fo.guest, 300, 100);
  await waitFor(() => fo.atNet.length === 400, 5000, 'a filter that is off passes frames');
  await fo.stop();
});

test('netrr chain validates every filter before opening anything: exit 64, one line', async () => {
  const d = join(tmp.path, 'v');
  mkdirSync(d);
  const r = await netrr(['chain', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/n.sock,server=on`, '-f', 'buffer,id=a', '-f', 'buffer,mode=interval,position=id=a']);
  assert.equal(r.code, 64);
  assert.equal(r.stderr, "netrr: filter 'buffer1' (buffer): Property 'filter-buffer.interval' requires a positive value [ERR_BAD_OPTION]\n");
  assert.ok(!existsSync(`${d}/g.sock`), 'nothing opened');
});

test('mirror: a copy of every frame, both directions, in QEMU framing; a stalled mirror reader never stalls the chain (copies dropped, counted)', async () => {
  const r = await rig(['mirror,id=m,outdev=unix:$D/m.sock,,server=on']);
  const { RawPeer } = await import('./helpers/raw-peer.ts');
  const reader = await RawPeer.connect({ path: `${r.d}/m.sock` });
  let f = await r.filter('m');
  while (!(f.outdev as { connected: boolean }).connected) f = await r.filter('m');
  await send(r.guest, 0, 1000);
  await send(r.net, 100_000, 500);
  await waitFor(() => r.atNet.length === 1000 && r.atGuest.length === 500, 10_000, 'both sides');
  await waitFor(() => reader.frames.length === 1500, 10_000, 'every copy');
  assert.deepEqual(reader.frames.map(indexOf).sort((a, b) => a - b), [...range(0, 1000), ...range(100_000, 100_500)]);
  reader.sock.pause(); // now it reads nothing
  await send(r.guest, 1000, 30_000, 1000);
  await waitFor(() => r.atNet.length === 31_000, 30_000, '30 MB through the chain with a stalled mirror reader');
  assert.deepEqual(r.atNet, range(0, 31_000));
  f = await r.filter('m');
  assert.ok((f.port as { dropped: { backlogFull: number } }).dropped.backlogFull > 0, JSON.stringify(f.port));
  reader.sock.destroy();
  await r.stop();
});

test("QEMU's own filter-redirector (a guest-less QEMU 7.2) reads the mirror as its indev: every copy, byte for byte, out of its netdev, each direction in order", async () => {
  const r = await rig(['mirror,id=m,outdev=unix:$D/qr.sock,,reconnect-ms=200']);
  const { Qemu } = await import('./helpers/qemu.ts');
  const { RawPeer } = await import('./helpers/raw-peer.ts');
  const d = r.d;
  // The redirector on netdev qa with queue=rx injects what it reads from in0 as if from qa's peer (the hub),
  // so QEMU delivers it to netdev qa, whose stream socket our reader holds (reference qemu-interop.md §4).
  const qemu = new Qemu([
    '-chardev', `socket,id=in0,path=${d}/qr.sock,server=on,wait=off`,
    '-netdev', `stream,id=qa,server=on,addr.type=unix,addr.path=${d}/qa.sock`, '-netdev', 'hubport,id=ha,hubid=0,netdev=qa',
    '-netdev', `stream,id=qb,server=on,addr.type=unix,addr.path=${d}/qb.sock`, '-netdev', 'hubport,id=hb,hubid=0,netdev=qb',
    '-object', 'filter-redirector,id=r0,netdev=qa,queue=rx,indev=in0',
  ]);
  try {
    await qemu.waitForSockets([`${d}/qr.sock`, `${d}/qa.sock`, `${d}/qb.sock`]);
    const atA = await RawPeer.connect({ path: `${d}/qa.sock` });
    const atB = await RawPeer.connect({ path: `${d}/qb.sock` });
    let f = await r.filter('m');
    for (let k = 0; k < 500 && !(f.outdev as { connected: boolean }).connected; k++) {
      await new Promise((res) => setTimeout(res, 20));
      f = await r.filter('m');
    }
    assert.ok((f.outdev as { connected: boolean }).connected, 'the mirror reached QEMU');
    const sent = new Map<number, Uint8Array>();
    const sizes = (i: number): number => 60 + ((i * 7919) % 1455);
    for (let i = 0; i < 3000; i++) sent.set(i, numbered(i, sizes(i)));
    for (let i = 100_000; i < 100_500; i++) sent.set(i, numbered(i, sizes(i)));
    await Promise.all([send(r.guest, 0, 3000, sizes), send(r.net, 100_000, 500, sizes)]);
    await waitFor(() => atA.frames.length === 3500, 30_000, `3500 copies out of QEMU's netdev (${atA.frames.length})`);
    assert.equal(atB.frames.length, 0, 'nothing went the other way through the hub');
    const idx = atA.frames.map(indexOf);
    assert.deepEqual(idx.filter((i) => i < 100_000), range(0, 3000), 'guest → network copies in order');
    assert.deepEqual(idx.filter((i) => i >= 100_000), range(100_000, 100_500), 'network → guest copies in order');
    for (const [k, i] of idx.entries()) assert.ok(Buffer.from(atA.frames[k]!).equals(Buffer.from(sent.get(i)!)), `copy of frame ${i} is byte-identical`);
    f = await r.filter('m');
    assert.equal(f.mirrored, 3500);
    atA.sock.destroy();
    atB.sock.destroy();
  } finally {
    await qemu.stop();
  }
  await r.stop();
});

test('a mirror before a rewriter sends every frame as it came, even the copies that waited for a stalled reader, while the guest gets them rewritten', async () => {
  const r = await rig(['mirror,id=m,queue=tx,outdev=unix:$D/m.sock,,server=on', 'rewriter,id=rw']);
  const { RawPeer } = await import('./helpers/raw-peer.ts');
  const reader = await RawPeer.connect({ path: `${r.d}/m.sock` });
  let f = await r.filter('m');
  while (!(f.outdev as { connected: boolean }).connected) f = await r.filter('m');
  const tcpAckOf = (fr: Uint8Array): number => Buffer.from(fr).readUInt32BE(42);
  const atGuest: Uint8Array[] = [];
  r.guest.onFrame = (fr) => atGuest.push(Uint8Array.from(fr));
  let atNet = 0;
  r.net.onFrame = () => atNet++;
  // The handshake: offset = secondary ISN 5000 − primary ISN 3000.
  r.net.send(clientGuestSegment(true, 0x02, 1000, 0), 0);
  await waitFor(() => atGuest.length === 1, 5000, 'SYN');
  r.guest.send(clientGuestSegment(false, 0x12, 5000, 1001), 0);
  await waitFor(() => atNet === 1, 5000, 'SYN/ACK');
  reader.sock.pause(); // the mirror's reader stops: its copies wait in the mirror's port
  const N = 3000;
  for (let i = 0; i < N; i++) {
    if (!r.net.writable) await waitFor(() => r.net.writable, 30_000, 'sender writable');
    r.net.send(clientGuestSegment(true, 0x10, 1001, 3001, new Uint8Array(1000).fill(i & 0xff)), 0);
  }
  await waitFor(() => atGuest.length === N + 1, 30_000, 'every segment at the guest');
  assert.ok(atGuest.slice(1).every((fr) => tcpAckOf(fr) === 5001), 'the guest gets them rewritten');
  f = await r.filter('m');
  assert.ok((f.port as { backlogFrames: number }).backlogFrames > 0, 'copies are waiting in the mirror');
  reader.sock.resume();
  await waitFor(() => reader.frames.length === N + 1, 30_000, 'every copy at the mirror reader');
  const wrong = reader.frames.map((fr, i) => [i, tcpAckOf(fr)]).filter(([i, a]) => i! > 0 && a !== 3001);
  assert.deepEqual(wrong.slice(0, 5), [], `the mirror sends them as they came (${wrong.length} differ)`);
  assert.equal((await r.filter('rw')).ackRewritten, N, 'the first data segment sets the offset and is shifted too');
  reader.sock.destroy();
  await r.stop();
});

test('redirector: with no outdev peer frames pass on; with one they go to it instead; indev frames are injected after it', async () => {
  const r = await rig(['redirector,id=rd,queue=rx,outdev=unix:$D/ro.sock,,server=on,indev=unix:$D/ri.sock,,server=on']);
  await send(r.guest, 0, 100);
  await waitFor(() => r.atNet.length === 100, 5000, 'no outdev peer: passed on');
  const { RawPeer } = await import('./helpers/raw-peer.ts');
  const out = await RawPeer.connect({ path: `${r.d}/ro.sock` });
  let f = await r.filter('rd');
  while (!(f.endpoints as { name: string; connected: boolean }[]).find((e) => e.name === 'rd.outdev')!.connected) f = await r.filter('rd');
  await send(r.guest, 100, 200);
  await waitFor(() => out.frames.length === 200, 5000, 'redirected to outdev');
  assert.deepEqual(out.frames.map(indexOf), range(100, 300));
  assert.equal(r.atNet.length, 100, 'consumed: not at the network');
  const inject = createEndpoint(`unix:${r.d}/ri.sock`);
  await inject.start();
  await inject.waitConnected(5000);
  await send(inject, 500_000, 300);
  await waitFor(() => r.atNet.length === 400, 5000, 'injected toward the network (queue=rx)');
  assert.deepEqual(r.atNet.slice(100), range(500_000, 500_300));
  f = await r.filter('rd');
  assert.equal(f.redirected, 200);
  assert.equal(f.passedNoPeer, 100);
  assert.equal(f.injected, 300);
  await inject.close();
  out.sock.destroy();
  await r.stop();
});

test('record and buffer in one chain: the log holds what left the buffer (guest side) and what came from the network, in order', async () => {
  const r = await rig(['record,id=rec,log=$D/x.nrrlog,sync=always', 'buffer,id=ob,queue=rx']);
  await send(r.guest, 0, 500);
  let f = await r.filter('ob');
  for (let k = 0; f.backlogFrames !== 500 && k < 500; k++) f = await r.filter('ob');
  const rec = await r.filter('rec');
  assert.equal((rec.log as { records: number }).records, 0, 'held output is not logged as sent before its commit');
  await r.ctl.execute('epoch-begin');
  await r.ctl.execute('epoch-commit', { epoch: 1 });
  await send(r.net, 100_000, 200);
  await waitFor(() => r.atNet.length === 500 && r.atGuest.length === 200, 10_000, 'both sides');
  await r.stop();
  const info = JSON.parse((await netrr(['log', 'info', `${r.d}/x.nrrlog`, '--json'])).stdout) as { frames: number; ports: Record<string, number> };
  assert.equal(info.frames, 700);
  assert.equal(info.ports['guest →'], 500);
  assert.equal(info.ports['upstream →'], 200);
  const v = await netrr(['log', 'verify', `${r.d}/x.nrrlog`]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});
