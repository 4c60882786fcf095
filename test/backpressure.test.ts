// Issue 8 items 1 and 2 over real sockets: backpressure follows the output
// peer's life (a stalled reader that disconnects no longer freezes the inputs
// for good), and a checkpoint flush or a shutdown larger than the outdev's
// write limit arrives whole, exactly once, in order.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, test } from 'node:test';
import { Bridge } from '../src/app/bridge.ts';
import { CompareProxy } from '../src/app/compare-proxy.ts';
import { encodeRecord } from '../src/codec/qemu-framing.ts';
import { compareConfig } from '../src/engine/colo-compare/compare-engine.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { STREAM_HARD_LIMIT_BYTES } from '../src/io/stream-endpoint.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { RawPeer, waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-bp-');
after(() => tmp.cleanup());
const dir = tmp.sub;

/** A frame whose payload names its index (udp, `flow` picks the source port). */
function numbered(i: number, bytes: number, flow = 0): Uint8Array {
  return buildFrame({ proto: 'udp', srcPort: 2000 + flow, payload: `#${i}#`.padEnd(bytes - 42, '.') });
}
const indexOf = (f: Uint8Array): number => Number(/#(\d+)#/.exec(Buffer.from(f.subarray(42, 62)).toString('latin1'))![1]);

/** Sends frame(0..count-1) on `ep`, waiting while it is above its high-water mark, so the sender itself never drops. */
async function sendAll(eps: FrameEndpoint[], count: number, frame: (i: number) => Uint8Array): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!eps.every((e) => e.writable)) await waitFor(() => eps.every((e) => e.writable), 30_000, 'sender writable');
    const f = frame(i);
    for (const e of eps) assert.ok(e.send(f, 0));
  }
}

/** A reader that connects and reads nothing: the kernel buffers fill, then netrr's. */
function stalledReader(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    s.once('connect', () => {
      s.pause();
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Streams frames into `sender` until `until()` holds; never waits on a write that a paused netrr will not take. */
async function pumpUntil(sender: RawPeer, frame: (i: number) => Uint8Array, until: () => boolean, from = 0): Promise<number> {
  let i = from;
  while (!until()) {
    const batch: Uint8Array[] = [];
    for (let k = 0; k < 200; k++) batch.push(encodeRecord(frame(i++)));
    if (sender.sock.write(Buffer.concat(batch))) await new Promise((r) => setImmediate(r));
    else await Promise.race([new Promise((r) => sender.sock.once('drain', r)), waitFor(until, 30_000, 'pause')]);
    if (i - from > 200_000) throw new Error('never paused');
  }
  return i;
}

test('bridge: a stalled reader disconnects, a fresh reader gets traffic again; every frame accounted for', async () => {
  const d = dir();
  const bridge = new Bridge({ a: `unix:${d}/a.sock,server=on`, b: `unix:${d}/b.sock,server=on` });
  await bridge.start();
  const sender = await RawPeer.connect({ path: `${d}/a.sock` });
  const stalled = await stalledReader(`${d}/b.sock`);
  await waitFor(() => bridge.a.connected && bridge.b.connected, 5000, 'both peers');
  // Fill everything: the kernel's buffers, then the endpoint's, until netrr pauses reading side a.
  const sent = await pumpUntil(sender, (i) => numbered(i, 1000), () => bridge.pause[0].paused);
  assert.ok(sent * 1000 > 1024 * 1024, `paused after ${sent} frames`);
  stalled.destroy();
  await waitFor(() => !bridge.b.connected && !bridge.pause[0].paused, 5000, 'reads resume once the stalled reader is gone');
  const fresh = await RawPeer.connect({ path: `${d}/b.sock` });
  await waitFor(() => bridge.b.connected, 5000, 'fresh reader attached');
  // What the sender's socket still held went to no one (counted noPeer); now a marker stream of 3 MB.
  const markers = Array.from({ length: 3000 }, (_, i) => numbered(1_000_000 + i, 1000));
  for (let i = 0; i < markers.length; i += 300) await sender.write(Buffer.concat(markers.slice(i, i + 300).map((f) => encodeRecord(f))));
  await waitFor(() => fresh.frames.length >= 3000 && indexOf(fresh.frames.at(-1)!) === 1_002_999, 10_000, 'fresh reader receives the marker stream');
  const got = fresh.frames.map(indexOf).filter((i) => i >= 1_000_000);
  assert.deepEqual(got, markers.map((_, i) => 1_000_000 + i), 'every marker, once, in order');
  await waitFor(() => bridge.a.counters.rxFrames === sent + 3000, 5000, 'every frame sent was read');
  const port = bridge.ports[1].counters;
  const b = bridge.b.counters;
  assert.equal(bridge.a.counters.rxFrames, port.sent + port.backlogFrames + port.dropped.noPeer + port.dropped.backlogFull);
  await waitFor(() => b.txQueuedFrames === 0, 5000, 'writes settle');
  assert.equal(port.sent, b.txFrames + b.txQueuedFrames + b.txDropped());
  assert.ok(b.txDrops.noPeer + b.txDrops.writeError + port.dropped.noPeer > 0, 'the stalled reader lost what it never read, counted');
  sender.sock.destroy();
  fresh.sock.destroy();
  await bridge.stop(1000);
});

async function compareSetup(d: string, maxQueuedBytes = 256 * 1024 * 1024): Promise<{ proxy: CompareProxy; pri: FrameEndpoint; sec: FrameEndpoint }> {
  const proxy = new CompareProxy({
    primaryIn: `unix:${d}/pri.sock,server=on`,
    secondaryIn: `unix:${d}/sec.sock,server=on`,
    outdev: `unix:${d}/out.sock,server=on`,
    vnetHdrSupport: false,
    config: compareConfig({ mode: 'extended', compareTimeoutMs: 600_000, expiredScanCycleMs: 600_000, maxQueueSize: 1_000_000, maxQueuedBytes }),
  });
  await proxy.start();
  const pri = createEndpoint(`unix:${d}/pri.sock`);
  const sec = createEndpoint(`unix:${d}/sec.sock`);
  for (const ep of [pri, sec]) {
    await ep.start();
    await ep.waitConnected(5000);
  }
  await waitFor(() => proxy.primary.connected && proxy.secondary.connected, 5000, 'inputs attached');
  return { proxy, pri, sec };
}

test('compare: outdev reader stalls, inputs pause; it disconnects, a fresh reader receives compared output again', async () => {
  const d = dir();
  const { proxy, pri, sec } = await compareSetup(d);
  const stalled = await stalledReader(`${d}/out.sock`);
  await waitFor(() => proxy.out.connected, 5000, 'outdev reader');
  let i = 0;
  while (!proxy.inputs.paused) {
    for (let k = 0; k < 200; k++, i++) {
      const f = numbered(i, 1400, i % 16);
      pri.send(f, 0);
      sec.send(f, 0);
    }
    await new Promise((r) => setImmediate(r));
    assert.ok(i < 200_000, 'inputs never paused');
  }
  stalled.destroy();
  await waitFor(() => !proxy.out.connected && !proxy.inputs.paused, 5000, 'inputs resume once the stalled reader is gone');
  const fresh = await RawPeer.connect({ path: `${d}/out.sock` });
  await waitFor(() => proxy.out.connected, 5000, 'fresh reader');
  await sendAll([pri, sec], 2000, (k) => numbered(1_000_000 + k, 1400, k % 16));
  const markers = (): number[] => fresh.frames.map(indexOf).filter((k) => k >= 1_000_000);
  await waitFor(() => markers().length >= 2000, 10_000, 'fresh reader receives the new pairs');
  assert.deepEqual(markers().sort((a, b) => a - b), Array.from({ length: 2000 }, (_, k) => 1_000_000 + k));
  fresh.sock.destroy();
  await pri.close();
  await sec.close();
  await proxy.stop(1000);
});

test('compare: a checkpoint flush of 100 000 held primaries (144 MB, 17x the write limit) arrives whole, once, in order', async () => {
  const d = dir();
  const { proxy, pri, sec } = await compareSetup(d);
  const reader = await RawPeer.connect({ path: `${d}/out.sock` });
  await waitFor(() => proxy.out.connected, 5000, 'outdev reader');
  const N = 100_000;
  // The secondary stays silent, so every primary is held.
  await sendAll([pri], N, (i) => numbered(i, 1400, i % 100));
  await waitFor(() => proxy.engine.queuedPrimary === N, 30_000, 'all primaries held');
  assert.ok(N * 1400 > 16 * STREAM_HARD_LIMIT_BYTES);
  assert.equal(reader.frames.length, 0);
  proxy.checkpointDone('test');
  await waitFor(() => reader.frames.length === N, 30_000, `all ${N} flushed frames arrive`);
  assert.ok(reader.frames.every((f, i) => indexOf(f) === i), 'in arrival order, each once');
  const c = proxy.engine.counters;
  assert.equal(c.primary.flushed, N);
  assert.equal(proxy.out.counters.txDrops.backpressure, 0);
  assert.equal(proxy.outPort.counters.dropped.backlogFull, 0);
  assert.ok(proxy.outPort.counters.backlogPeakBytes > STREAM_HARD_LIMIT_BYTES, 'the port held what the socket could not take');
  reader.sock.destroy();
  await pri.close();
  await sec.close();
  await proxy.stop(1000);
});

test('netrr compare: SIGINT with 50 000 held primaries (70 MB) delivers them all before it exits 0', async () => {
  const d = dir();
  const proc = start(process.execPath, [NETRR_BIN, 'compare', '--primary-in', `unix:${d}/pri.sock,server=on`, '--secondary-in', `unix:${d}/sec.sock,server=on`, '--outdev', `unix:${d}/out.sock,server=on`, '--control', `unix:${d}/ctl.sock`, '--compare-timeout', '600000', '--max-queue-size', '1000000']);
  await waitFor(() => proc.child.exitCode !== null || ['pri', 'sec', 'out', 'ctl'].every((s) => existsSync(`${d}/${s}.sock`)), 10_000, 'compare sockets');
  const reader = await RawPeer.connect({ path: `${d}/out.sock` });
  const pri = createEndpoint(`unix:${d}/pri.sock`);
  await pri.start();
  await pri.waitConnected(5000);
  const N = 50_000;
  await sendAll([pri], N, (i) => numbered(i, 1400, i % 50));
  await waitFor(() => pri.counters.txFrames === N, 30_000, 'all primaries written to netrr');
  // The control socket tells when netrr holds them all.
  const { ControlClient } = await import('../src/control/control-client.ts');
  const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
  for (;;) {
    const st = (await ctl.execute('query-status')) as { queued: { primary: number } };
    if (st.queued.primary === N) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  ctl.close();
  proc.child.kill('SIGINT');
  await waitFor(() => proc.child.exitCode !== null, 30_000, 'compare exits');
  assert.equal(proc.child.exitCode, 0, proc.out());
  await waitFor(() => reader.closed, 5000, 'outdev closed by netrr');
  assert.equal(reader.frames.length, N);
  assert.ok(reader.frames.every((f, i) => indexOf(f) === i), 'in arrival order, each once');
  await pri.close();
});
