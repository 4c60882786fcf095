// The arena read path (src/io/arena-reader.ts) under real sockets: accepted
// and dialled sockets read through `onread` on this runtime (a change in Node
// that stops the hand-over fails here, loudly, on both runtimes the suite
// runs), frames survive many reads in the segmented policy, the recycled
// policy reuses one buffer, pausing stops reads, a peer's end is seen.

import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeRecord } from '../src/codec/qemu-framing.ts';
import { ArenaReader, adoptWithOnread } from '../src/io/arena-reader.ts';
import { parseEndpointSpec, type StreamSpec } from '../src/io/endpoint-spec.ts';
import { StreamEndpoint } from '../src/io/stream-endpoint.ts';
import { RawPeer, waitFor } from './helpers/raw-peer.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-arena-');
after(() => tmp.cleanup());
let n = 0;
const sockPath = (): string => join(tmp.path, `a${n++}.sock`);

/** Frame i: a length that varies (so records straddle reads) and bytes that say which frame it is. */
function frame(i: number): Uint8Array {
  const f = new Uint8Array(60 + ((i * 977) % 1455));
  for (let k = 0; k < f.length; k++) f[k] = (i + k * 7) & 0xff;
  f[0] = i & 0xff;
  f[1] = (i >> 8) & 0xff;
  f[2] = (i >> 16) & 0xff;
  return f;
}

function checkFrame(f: Uint8Array, i: number): boolean {
  const want = frame(i);
  if (f.length !== want.length) return false;
  for (let k = 0; k < f.length; k++) if (f[k] !== want[k]) return false;
  return true;
}

/** Writes frames [0, count) as records in writes of about 64 KiB. */
async function sendFrames(sock: net.Socket, count: number): Promise<void> {
  let batch: Uint8Array[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const r = encodeRecord(frame(i));
    batch.push(r);
    bytes += r.length;
    if (bytes >= 65536 || i === count - 1) {
      if (!sock.write(Buffer.concat(batch))) await new Promise((r2) => sock.once('drain', r2));
      batch = [];
      bytes = 0;
    }
  }
}

for (const borrowed of [false, true]) {
  const policy = borrowed ? 'recycled (borrowed frames)' : 'segmented';
  test(`${policy}: an accepted socket is read through onread, 6 MB of frames arrive whole and in order`, async () => {
    const path = sockPath();
    const ep = new StreamEndpoint(parseEndpointSpec(`unix:${path},server=on`) as StreamSpec, { borrowedFrames: borrowed });
    const kept: Uint8Array[] = [];
    let good = 0;
    let reads = 0;
    ep.onRead = () => reads++;
    ep.onFrame = (f) => {
      // Borrowed views are checked during the call; kept ones after everything arrived.
      if (borrowed && checkFrame(f, good)) good++;
      else if (!borrowed) kept.push(f);
    };
    await ep.start();
    const peer = await RawPeer.connect({ path });
    await ep.waitConnected(2000);
    assert.equal(ep.status().readPath, 'onread', 'Node no longer lets an accepted socket read into our arena: see adoptWithOnread');
    const N = 8000;
    await sendFrames(peer.sock, N);
    await waitFor(() => ep.counters.rxFrames === N, 20_000, 'all frames');
    assert.ok(reads > 10, `${reads} reads: the data came in many`);
    if (borrowed) assert.equal(good, N, 'every frame right while it was handed on');
    else {
      // Every view still holds its frame although thousands of reads came after it.
      for (let i = 0; i < N; i++) assert.ok(checkFrame(kept[i]!, i), `frame ${i} intact`);
    }
    assert.equal(ep.counters.rxBytes, Array.from({ length: N }, (_, i) => frame(i).length).reduce((a, b) => a + b, 0));
    peer.sock.destroy();
    await ep.close();
  });
}

test('a dialled socket reads through onread too; the peer closing is seen, and a new one is read the same way', async () => {
  const path = sockPath();
  const peers: net.Socket[] = [];
  const server = net.createServer((s) => peers.push(s));
  await new Promise<void>((r) => server.listen(path, r));
  const ep = new StreamEndpoint(parseEndpointSpec(`unix:${path},reconnect-ms=100`) as StreamSpec, { borrowedFrames: true });
  let got = 0;
  ep.onFrame = (f) => {
    if (checkFrame(f, got)) got++;
  };
  await ep.start();
  await ep.waitConnected(2000);
  assert.equal(ep.status().readPath, 'onread');
  await waitFor(() => peers.length === 1);
  await sendFrames(peers[0]!, 3000);
  await waitFor(() => got === 3000, 10_000, 'frames from the first peer');
  peers[0]!.end();
  await waitFor(() => ep.counters.disconnects === 1, 5000, 'the end of the first peer');
  await waitFor(() => peers.length === 2 && ep.connected, 5000, 'dialled again');
  got = 0;
  await sendFrames(peers[1]!, 3000);
  await waitFor(() => got === 3000, 10_000, 'frames from the second peer');
  for (const p of peers) p.destroy();
  await ep.close();
  await new Promise((r) => server.close(r));
});

test('pausing stops the reads (the peer backs up); resuming brings every frame', async () => {
  const path = sockPath();
  const ep = new StreamEndpoint(parseEndpointSpec(`unix:${path},server=on`) as StreamSpec, { borrowedFrames: true });
  let got = 0;
  ep.onFrame = (f) => {
    if (checkFrame(f, got)) got++;
  };
  await ep.start();
  const peer = await RawPeer.connect({ path });
  await ep.waitConnected(2000);
  ep.pause();
  // 16 MB cannot fit in the socket buffers: with reads stopped, the writer's queue grows.
  const N = 20_000;
  const all = Buffer.concat(Array.from({ length: N }, (_, i) => encodeRecord(frame(i))));
  peer.sock.write(all);
  await waitFor(() => peer.sock.writableLength > 0 && got < N, 5000, 'the peer backed up');
  const before = got;
  assert.ok(before < N, `${before} frames read while paused`);
  ep.resume();
  await waitFor(() => got === N, 20_000, 'every frame after resume');
  assert.equal(ep.counters.rxFrames, N);
  peer.sock.destroy();
  await ep.close();
});

test('ArenaReader: recycled hands every read the same buffer; segmented moves on once a segment is nearly full', () => {
  const chunks: Uint8Array[] = [];
  const rec = new ArenaReader('recycled', (c) => chunks.push(c));
  const b1 = rec.onread.buffer();
  rec.onread.callback(100, b1);
  const b2 = rec.onread.buffer();
  assert.equal(b1, b2);
  assert.equal(chunks[0]!.length, 100);
  assert.equal(rec.segments, 1);

  const seg = new ArenaReader('segmented', (c) => chunks.push(c), 256 * 1024);
  const t1 = seg.onread.buffer();
  t1[0] = 42;
  seg.onread.callback(150 * 1024, t1);
  const t2 = seg.onread.buffer();
  // 106 KiB left ≥ a read: the next read goes right after the first, into the same memory.
  assert.equal(t2.buffer, t1.buffer);
  assert.equal(t2.byteOffset, t1.byteOffset + 150 * 1024);
  seg.onread.callback(60 * 1024, t2);
  const t3 = seg.onread.buffer();
  assert.notEqual(t3.buffer, t1.buffer, 'a new segment once less than a read is left');
  assert.equal(seg.segments, 2);
  assert.equal(chunks[1]![0], 42, 'the first chunk still holds its bytes');
});

test('adoptWithOnread declines a socket without a handle (the caller falls back to data events)', () => {
  const s = new net.Socket();
  const reader = new ArenaReader('recycled', () => {});
  assert.equal(adoptWithOnread(s, reader.onread), null);
  s.destroy();
});
