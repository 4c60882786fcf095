import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeRecord } from '../src/codec/qemu-framing.ts';
import { parseEndpointSpec } from '../src/io/endpoint-spec.ts';
import { DgramEndpoint } from '../src/io/dgram-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { StreamEndpoint } from '../src/io/stream-endpoint.ts';
import { NetrrError } from '../src/errors.ts';
import { RawPeer, rawServer, waitFor } from './helpers/raw-peer.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;
const sockPath = (): string => join(tmp.path, `s${n++}.sock`);

test('endpoint specs: QEMU-style forms, aliases and clear errors', () => {
  assert.deepEqual(parseEndpointSpec('unix:/tmp/a.sock,server=on'), { kind: 'unix', text: 'unix:/tmp/a.sock,server=on', vnetHdr: false, path: '/tmp/a.sock', server: true, reconnectMs: 2000 });
  const t = parseEndpointSpec('tcp:[::1]:9000,vnet_hdr_support=on,reconnect-ms=500');
  assert.equal(t.kind, 'tcp');
  assert.ok(t.kind === 'tcp' && t.host === '::1' && t.port === 9000 && t.vnetHdr && t.reconnectMs === 500);
  const u = parseEndpointSpec('udp:127.0.0.1:0,remote=127.0.0.1:5000');
  assert.ok(u.kind === 'udp' && u.remotePort === 5000);
  assert.deepEqual(parseEndpointSpec('tap:ntap0,netns=ns1,vnet-hdr=on,vnet-hdr-len=10'), {
    kind: 'tap', text: 'tap:ntap0,netns=ns1,vnet-hdr=on,vnet-hdr-len=10', vnetHdr: true, ifname: 'ntap0', netns: 'ns1', vnetHdrLen: 10, server: false, reconnectMs: 2000,
  });
  const tap = parseEndpointSpec('tap:t0');
  assert.ok(tap.kind === 'tap' && tap.netns === undefined && tap.vnetHdrLen === 12 && !tap.vnetHdr);
  for (const bad of ['nope', 'unix:', 'tcp:host', 'tcp:h:99999', 'udp:1.2.3.4:5', 'unix:/a,server=maybe', 'unix:/a,bogus=1', 'tcp:h:1,server=on,reconnect-ms=5', 'ftp:x',
    'tap:', 'tap:a-name-far-too-long', 'tap:a/b', 'tap:t0,netns=', 'tap:t0,vnet-hdr-len=11', 'tap:t0,server=on']) {
    assert.throws(() => parseEndpointSpec(bad), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_BAD_ENDPOINT_SPEC', bad);
  }
});

test('unix server and client exchange frames byte-exactly, both ways, counted', async () => {
  const path = sockPath();
  const server = new StreamEndpoint(parseEndpointSpec(`unix:${path},server=on`) as never);
  const client = createEndpoint(`unix:${path}`);
  const atServer: Uint8Array[] = [];
  const atClient: Uint8Array[] = [];
  server.onFrame = (f) => atServer.push(Uint8Array.from(f));
  client.onFrame = (f) => atClient.push(Uint8Array.from(f));
  await server.start();
  await client.start();
  await client.waitConnected(2000);
  await server.waitConnected(2000);
  const frames = Array.from({ length: 200 }, (_, i) => new Uint8Array(1 + (i * 37) % 1600).fill(i & 0xff));
  for (const f of frames) assert.ok(client.send(f, 0));
  for (const f of frames.slice(0, 50)) assert.ok(server.send(f, 0));
  await waitFor(() => atServer.length === 200 && atClient.length === 50);
  assert.deepEqual(atServer, frames);
  assert.deepEqual(atClient, frames.slice(0, 50));
  await waitFor(() => client.counters.txQueuedFrames === 0);
  assert.equal(client.counters.txFrames, 200);
  assert.equal(server.counters.rxFrames, 200);
  assert.equal(server.counters.rxBytes, frames.reduce((s, f) => s + f.length, 0));
  await client.close();
  await server.close();
});

test('writes are batched: many records per write() syscall', async () => {
  const path = sockPath();
  const srv = await rawServer(path);
  const ep = createEndpoint(`unix:${path}`);
  await ep.start();
  await ep.waitConnected(2000);
  await waitFor(() => srv.peers.length === 1);
  for (let i = 0; i < 1000; i++) ep.send(new Uint8Array(64).fill(1), 0);
  await waitFor(() => srv.peers[0]!.frames.length === 1000);
  assert.ok(srv.peers[0]!.dataEvents < 50, `${srv.peers[0]!.dataEvents} reads for 1000 records`);
  await ep.close();
  await srv.close();
});

test('client reconnects with backoff after the server goes away and comes back', async () => {
  const path = sockPath();
  const client = createEndpoint(`unix:${path},reconnect-ms=100`);
  const events: string[] = [];
  client.events.on((e) => events.push(e.type));
  await client.start(); // nothing listening yet: keeps retrying
  const srv1 = await rawServer(path);
  await client.waitConnected(3000);
  await srv1.close();
  await waitFor(() => !client.connected);
  assert.equal(client.send(Uint8Array.of(1), 0), false);
  assert.equal(client.counters.txDrops.noPeer, 1);
  const srv2 = await rawServer(path);
  await client.waitConnected(3000);
  client.send(Uint8Array.of(2, 3), 0);
  await waitFor(() => srv2.peers[0]?.frames.length === 1);
  assert.deepEqual(srv2.peers[0]!.frames[0], Uint8Array.of(2, 3));
  assert.equal(client.counters.connects, 2);
  assert.ok(events.includes('disconnected'));
  await client.close();
  await srv2.close();
});

test('server accepts one peer at a time; the next one after the first leaves', async () => {
  const path = sockPath();
  const ep = createEndpoint(`unix:${path},server=on`);
  const got: number[] = [];
  ep.onFrame = (f) => got.push(f[0]!);
  await ep.start();
  const a = await RawPeer.connect({ path });
  await ep.waitConnected(2000);
  const b = await RawPeer.connect({ path });
  await waitFor(() => b.closed, 2000, 'second peer turned away');
  assert.equal(ep.counters.rejectedPeers, 1);
  await a.write(encodeRecord(Uint8Array.of(1)));
  await waitFor(() => got.length === 1);
  a.sock.end();
  await waitFor(() => !ep.connected);
  const c = await RawPeer.connect({ path });
  await ep.waitConnected(2000);
  await c.write(encodeRecord(Uint8Array.of(3)));
  await waitFor(() => got.length === 2);
  assert.deepEqual(got, [1, 3]);
  c.sock.destroy();
  await ep.close();
});

test('an oversized length closes that connection with a counted error; a new connection parses cleanly', async () => {
  const path = sockPath();
  const ep = createEndpoint(`unix:${path},server=on`);
  const got: Uint8Array[] = [];
  const errors: string[] = [];
  ep.onFrame = (f) => got.push(Uint8Array.from(f));
  ep.events.on((e) => e.type === 'error' && errors.push(`${e.code}: ${e.detail}`));
  await ep.start();
  const a = await RawPeer.connect({ path });
  await a.write(Buffer.concat([encodeRecord(Uint8Array.of(1)), Buffer.from([0xff, 0xff, 0xff, 0xff]), encodeRecord(Uint8Array.of(2))]));
  await waitFor(() => a.closed, 2000, 'endpoint closes the bad connection');
  assert.equal(ep.counters.framingErrors, 1);
  assert.equal(ep.counters.rxDrops.tooLong, 1);
  assert.match(errors[0]!, /^ERR_FRAME_TOO_LONG: record length 4294967295 exceeds/);
  const b = await RawPeer.connect({ path });
  await b.write(encodeRecord(Uint8Array.of(3)));
  await waitFor(() => got.length === 2);
  assert.deepEqual(got, [Uint8Array.of(1), Uint8Array.of(3)]);
  b.sock.destroy();
  await ep.close();
});

test('a peer vanishing mid-record is counted as a torn record; zero-length records are counted', async () => {
  const path = sockPath();
  const ep = createEndpoint(`unix:${path},server=on`);
  ep.onFrame = () => {};
  await ep.start();
  const a = await RawPeer.connect({ path });
  await a.write(Buffer.concat([new Uint8Array(4), encodeRecord(Uint8Array.of(1)), encodeRecord(new Uint8Array(100)).subarray(0, 50)]));
  a.sock.end();
  await waitFor(() => ep.counters.disconnects === 1);
  assert.equal(ep.counters.rxFrames, 1);
  assert.equal(ep.counters.rxDrops.zeroLength, 1);
  assert.equal(ep.counters.rxDrops.tornRecord, 1);
  await ep.close();
});

test('backpressure: a peer that does not read makes the endpoint unwritable, then drops with a reason; draining resumes', async () => {
  const path = sockPath();
  const srv = await rawServer(path);
  const ep = new StreamEndpoint(parseEndpointSpec(`unix:${path}`) as never, { highWaterBytes: 256 * 1024, hardLimitBytes: 1024 * 1024 });
  let drains = 0;
  ep.onDrain = () => drains++;
  await ep.start();
  await ep.waitConnected(2000);
  await waitFor(() => srv.peers.length === 1);
  srv.peers[0]!.sock.pause();
  const frame = new Uint8Array(1400);
  let accepted = 0;
  // Feed in ticks so the endpoint actually hands batches to the kernel.
  for (let round = 0; round < 200 && ep.counters.txDrops.backpressure === 0; round++) {
    for (let i = 0; i < 100; i++) if (ep.send(frame, 0)) accepted++;
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(!ep.writable);
  assert.ok(ep.counters.txDrops.backpressure > 0);
  srv.peers[0]!.sock.resume();
  await waitFor(() => srv.peers[0]!.frames.length === accepted, 10_000, 'all accepted frames delivered');
  await waitFor(() => drains > 0);
  assert.ok(ep.writable);
  const c = ep.counters;
  assert.equal(c.txFrames + c.txQueuedFrames + c.txDropped(), accepted + c.txDrops.backpressure);
  await ep.close();
  await srv.close();
});

test('close() sends whole records only, even with many queued', async () => {
  const path = sockPath();
  const srv = await rawServer(path);
  const ep = createEndpoint(`unix:${path}`);
  await ep.start();
  await ep.waitConnected(2000);
  for (let i = 0; i < 5000; i++) ep.send(new Uint8Array(300).fill(i & 0xff), 0);
  await ep.close();
  await waitFor(() => srv.peers[0]!.closed);
  const p = srv.peers[0]!;
  assert.ok(p.decoder.atBoundary, 'stream ended on a record boundary');
  assert.equal(p.frames.length + ep.counters.txDropped(), 5000);
  await srv.close();
});

test('vnet header field on a TCP endpoint (port chosen by the OS)', async () => {
  const server = new StreamEndpoint(parseEndpointSpec('tcp:127.0.0.1:0,server=on,vnet-hdr=on') as never);
  const got: [number, number][] = [];
  server.onFrame = (f, v) => got.push([f.length, v]);
  await server.start();
  const client = createEndpoint(`tcp:127.0.0.1:${server.localPort},vnet-hdr=on`);
  await client.start();
  await client.waitConnected(2000);
  client.send(new Uint8Array(60), 12);
  client.send(new Uint8Array(5), 0);
  assert.equal(client.send(new Uint8Array(5), 6), false, 'vnet length beyond the frame is refused');
  await waitFor(() => got.length === 2);
  assert.deepEqual(got, [[60, 12], [5, 0]]);
  assert.equal(client.counters.txDrops.tooLong, 1);
  await client.close();
  await server.close();
});

test('UDP endpoint: one frame per datagram, empty datagrams counted, strangers (other port or other address) turned away', async () => {
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  const peerPort = peer.address().port;
  const ep = new DgramEndpoint(parseEndpointSpec(`udp:127.0.0.1:0,remote=127.0.0.1:${peerPort}`) as never);
  const got: Uint8Array[] = [];
  ep.onFrame = (f) => got.push(Uint8Array.from(f));
  await ep.start();
  const port = ep.localPort!;
  const atPeer: Buffer[] = [];
  peer.on('message', (m) => atPeer.push(m));
  peer.send(Uint8Array.of(1, 2, 3), port, '127.0.0.1');
  peer.send(new Uint8Array(0), port, '127.0.0.1');
  peer.send(Uint8Array.of(4), port, '127.0.0.1');
  const stranger = dgram.createSocket('udp4');
  stranger.send(Uint8Array.of(9), port, '127.0.0.1');
  // Same port as the remote, another address: a stranger too.
  const impostor = dgram.createSocket('udp4');
  await new Promise<void>((r) => impostor.bind(peerPort, '127.0.0.2', r));
  impostor.send(Uint8Array.of(8), port, '127.0.0.1');
  await waitFor(() => got.length === 2 && ep.counters.rxDrops.zeroLength === 1 && ep.counters.rejectedPeers === 2);
  impostor.close();
  assert.deepEqual(got, [Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
  assert.ok(ep.send(Uint8Array.of(7, 7), 0));
  assert.equal(ep.send(new Uint8Array(0), 0), false, 'never sends an empty datagram');
  await waitFor(() => atPeer.length === 1);
  assert.deepEqual([...atPeer[0]!], [7, 7]);
  assert.equal(ep.counters.txDrops.tooLong, 1);
  stranger.close();
  peer.close();
  await ep.close();
});

test('a client endpoint that receives an oversized length drops that connection and re-establishes it cleanly', async () => {
  const path = sockPath();
  const srv = await rawServer(path);
  const ep = createEndpoint(`unix:${path},reconnect-ms=100`);
  const got: number[] = [];
  ep.onFrame = (f) => got.push(f[0]!);
  await ep.start();
  await waitFor(() => srv.peers.length === 1);
  await srv.peers[0]!.write(Buffer.concat([encodeRecord(Uint8Array.of(1)), Buffer.from([0x7f, 0, 0, 0]), encodeRecord(Uint8Array.of(99))]));
  await waitFor(() => srv.peers.length === 2, 5000, 'client reconnects');
  await waitFor(() => ep.connected);
  await srv.peers[1]!.write(encodeRecord(Uint8Array.of(2)));
  await waitFor(() => got.length === 2);
  assert.deepEqual(got, [1, 2], 'nothing after the bad length was parsed as a record');
  assert.equal(ep.counters.framingErrors, 1);
  assert.equal(ep.counters.connects, 2);
  await ep.close();
  await srv.close();
});

test('endpoint events become control events with endpoint, detail and code (one conversion for bridge, record and compare)', async () => {
  const { endpointControlEvent } = await import('../src/io/frame-endpoint.ts');
  assert.deepEqual(endpointControlEvent({ type: 'rejected-peer', endpoint: 'guest', detail: 'busy', code: 'ERR_IO' }), ['ENDPOINT_REJECTED_PEER', { endpoint: 'guest', detail: 'busy', code: 'ERR_IO' }]);
  assert.deepEqual(endpointControlEvent({ type: 'connected', endpoint: 'a' }), ['ENDPOINT_CONNECTED', { endpoint: 'a' }]);
});

// A send that leaves an endpoint unwritable must always be followed by a drain:
// a port that saw writable false waits for it, and a lost one stalled a
// recorder for good (found by record-order's SIGKILL rounds). The stream case
// hits the edge exactly: 8 records of 508 + 4 bytes fill a 4096-byte mark
// while the frames alone (8 × 508 + 4 of framing missing) stay under it.
test('stream endpoint: the send that reaches the high-water mark, framing included, brings a drain (no lost wakeup)', async () => {
  const { Port } = await import('../src/app/port.ts');
  const path = sockPath();
  const server = await rawServer(path);
  const ep = new StreamEndpoint(parseEndpointSpec(`unix:${path}`) as never, { highWaterBytes: 4096 });
  await ep.start();
  await ep.waitConnected(5000);
  await waitFor(() => server.peers.length === 1);
  const port = new Port(ep);
  for (let i = 0; i < 9; i++) port.send(new Uint8Array(508).fill(i), 0);
  assert.equal(port.counters.backlogFrames, 1, 'the ninth frame waits for the drain');
  await waitFor(() => server.peers[0]!.frames.length === 9, 5000, 'all nine frames');
  assert.equal(port.congested, false);
  await ep.close();
  await server.close();
});

test('UDP endpoint: the send that fills the in-flight window brings a drain (no lost wakeup)', async () => {
  const { Port } = await import('../src/app/port.ts');
  const { DGRAM_MAX_IN_FLIGHT } = await import('../src/io/dgram-endpoint.ts');
  const peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  let got = 0;
  peer.on('message', () => got++);
  const ep = new DgramEndpoint(parseEndpointSpec(`udp:127.0.0.1:0,remote=127.0.0.1:${peer.address().port}`) as never);
  await ep.start();
  const port = new Port(ep);
  const n = DGRAM_MAX_IN_FLIGHT + 100;
  for (let i = 0; i < n; i++) port.send(Uint8Array.of(i & 0xff, 1, 2, 3), 0);
  assert.equal(port.counters.backlogFrames, 100, 'past the window, frames wait in the port');
  await waitFor(() => port.counters.backlogFrames === 0 && !port.congested, 10_000, 'the port drained');
  assert.equal(ep.counters.txFrames + ep.counters.txDrops.writeError, n);
  peer.close();
  await ep.close();
});

test('waitConnected fails with ERR_ENDPOINT_CLOSED when the endpoint closes first (its timer must not keep the process alive)', async () => {
  const ep = createEndpoint(`unix:${join(tmp.path, 'wait-close.sock')},server=on`, { name: 'g' });
  await ep.start();
  const waiting = ep.waitConnected(24 * 3600 * 1000);
  await ep.close();
  await assert.rejects(waiting, (e: unknown) => e instanceof NetrrError && e.code === 'ERR_ENDPOINT_CLOSED');
  await assert.rejects(ep.waitConnected(1000), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_ENDPOINT_CLOSED');
});
