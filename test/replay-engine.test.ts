import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LoggedFrame, type ReplayDivergence, ReplayEngine } from '../src/engine/replay/replay-engine.ts';
import { TCP_ACK, TCP_PSH, TCP_SYN } from '../src/packet/l4.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { FlowMappings, LearnTxn } from '../src/engine/replay/flow-mapping.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { replayRig } from './helpers/replay-rig.ts';

const G = { src: '52:54:00:12:34:56', dst: '52:55:0a:00:02:02', ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
const W = { src: '52:55:0a:00:02:02', dst: '52:54:00:12:34:56', ipSrc: '10.0.2.2', ipDst: '10.0.2.15' };

const run = replayRig;

const seqd = (frames: [boolean, Uint8Array][]): LoggedFrame[] => frames.map(([fromGuest, frame], i) => ({ seq: i, fromGuest, tsNs: i * 1_000_000, frame }));

test('causal pacing: world frames go in once the guest frames before them matched', () => {
  const recs = seqd([
    [false, buildFrame({ ...W, proto: 'udp', srcPort: 53, dstPort: 999, payload: 'hello' })],
    [true, buildFrame({ ...G, proto: 'udp', srcPort: 999, dstPort: 53, payload: 'q' })],
    [false, buildFrame({ ...W, proto: 'udp', srcPort: 53, dstPort: 999, payload: 'a' })],
  ]);
  const r = run(recs);
  r.e.start(0);
  assert.equal(r.injected.length, 1, 'only the frame before the first guest frame');
  r.e.guestFrame(recs[1]!.frame, 1);
  assert.equal(r.injected.length, 2);
  assert.ok(r.isFinished());
  assert.equal(r.divs.length, 0);
});

test('a fresh TCP port and ISN are learned from the SYN and applied to injected world frames (checksums valid)', () => {
  const syn = buildFrame({ ...G, proto: 'tcp', srcPort: 40000, dstPort: 80, seq: 1000, tcpFlags: TCP_SYN });
  const synack = buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: 40000, seq: 5000, ack: 1001, tcpFlags: TCP_SYN | TCP_ACK });
  const data = buildFrame({ ...G, proto: 'tcp', srcPort: 40000, dstPort: 80, seq: 1001, ack: 5001, tcpFlags: TCP_ACK | TCP_PSH, payload: 'GET' });
  const r = run(seqd([[true, syn], [false, synack], [true, data]]));
  r.e.start(0);
  // The live guest picked port 41234 and ISN 777777.
  r.e.guestFrame(buildFrame({ ...G, proto: 'tcp', srcPort: 41234, dstPort: 80, seq: 777777, tcpFlags: TCP_SYN }), 1);
  assert.equal(r.divs.length, 0);
  assert.equal(r.injected.length, 1);
  const v = new PacketView().decode(r.injected[0]!);
  assert.equal(v.dstPort, 41234);
  assert.equal(v.tcpAck, 777778);
  r.e.guestFrame(buildFrame({ ...G, proto: 'tcp', srcPort: 41234, dstPort: 80, seq: 777778, ack: 5001, tcpFlags: TCP_ACK | TCP_PSH, payload: 'GET' }), 2);
  assert.equal(r.divs.length, 0);
  assert.ok(r.isFinished());
  assert.equal(r.e.learned.length, 1);
});

test('a different payload diverges, names the field, and stops (or goes on with continue)', () => {
  const q = buildFrame({ ...G, proto: 'udp', srcPort: 999, dstPort: 53, payload: 'abc' });
  for (const cont of [false, true]) {
    const r = run(seqd([[true, q], [true, q]]), { continueOnDivergence: cont });
    r.e.start(0);
    r.e.guestFrame(buildFrame({ ...G, proto: 'udp', srcPort: 999, dstPort: 53, payload: 'abd' }), 1);
    assert.equal(r.divs.length, 1);
    assert.equal(r.divs[0]!.field, 'payload');
    assert.equal(r.divs[0]!.seq, 0);
    assert.equal(r.e.stopped, !cont);
  }
});

test('pure ACK timing is tolerated both ways; a missing frame times out', () => {
  const ack = buildFrame({ ...G, proto: 'tcp', srcPort: 1, dstPort: 2, seq: 10, ack: 20, tcpFlags: TCP_ACK });
  const fin = buildFrame({ ...G, proto: 'tcp', srcPort: 1, dstPort: 2, seq: 10, ack: 25, tcpFlags: TCP_ACK | 0x01 });
  const r = run(seqd([[true, ack], [true, fin]]));
  r.e.start(0);
  r.e.guestFrame(buildFrame({ ...G, proto: 'tcp', srcPort: 1, dstPort: 2, seq: 10, ack: 22, tcpFlags: TCP_ACK }), 1); // an ACK of its own timing
  r.e.guestFrame(fin, 2); // folds the recorded pure ACK
  assert.equal(r.divs.length, 0);
  assert.ok(r.isFinished());
  assert.equal(r.e.stats.skippedOptional + r.e.stats.matched, 2);
  assert.equal(r.e.stats.skippedOptional, 1, 'the recorded pure ACK is not waited for');
  const m = run(seqd([[true, buildFrame({ ...G, proto: 'udp', payload: 'x' })], [true, buildFrame({ ...G, proto: 'udp', payload: 'y' })]]));
  m.e.start(0);
  m.e.tick(60_000);
  assert.equal(m.divs.length, 0, 'no timeout before the guest has said anything (it is booting)');
  m.e.guestFrame(buildFrame({ ...G, proto: 'udp', payload: 'x' }), 60_000);
  m.e.tick(60_500);
  assert.equal(m.divs.length, 0);
  m.e.tick(61_001);
  assert.equal(m.divs[0]!.kind, 'missing');
  assert.equal(m.divs[0]!.seq, 1);
});

test('recorded pacing injects at the original times scaled by speed; fast does not wait', () => {
  const w = (p: string) => buildFrame({ ...W, proto: 'udp', payload: p });
  const recs: LoggedFrame[] = [0, 100, 200].map((ms, i) => ({ seq: i, fromGuest: false, tsNs: ms * 1e6, frame: w(`w${i}`) }));
  const r = run(recs, { pacing: 'recorded', speed: 2 });
  r.e.start(1000);
  assert.equal(r.injected.length, 1);
  r.e.tick(1049);
  assert.equal(r.injected.length, 1);
  r.e.tick(1050);
  assert.equal(r.injected.length, 2);
  r.e.tick(1100);
  assert.equal(r.injected.length, 3);
  const f = run(recs, { pacing: 'fast' });
  f.e.start(0);
  assert.equal(f.injected.length, 3);
  assert.ok(f.isFinished());
});

test('recorded pacing waits for the guest frame before a world frame, then for the recorded delay after it (scaled)', () => {
  const q = buildFrame({ ...G, proto: 'udp', srcPort: 68, dstPort: 67, payload: 'discover' });
  const a = buildFrame({ ...W, proto: 'udp', srcPort: 67, dstPort: 68, payload: 'offer' });
  // Recorded: the guest asked 3 s in, the world answered 40 ms later.
  const r = run([{ seq: 0, fromGuest: true, tsNs: 3000e6, frame: q }, { seq: 1, fromGuest: false, tsNs: 3040e6, frame: a }], { pacing: 'recorded', speed: 2 });
  r.e.start(0);
  r.e.tick(5000);
  assert.equal(r.injected.length, 0, 'not before the guest asked, however late it is');
  r.e.guestFrame(q, 9000); // this boot was slower
  assert.equal(r.injected.length, 0);
  r.e.tick(9019);
  assert.equal(r.injected.length, 0);
  r.e.tick(9020);
  assert.equal(r.injected.length, 1, '40 ms / speed 2 after the match');
  assert.ok(r.isFinished());
});

test('DHCP: the xid is learned only from a matching message, replies carry the live xid, a retried DISCOVER is a retransmission', () => {
  const bootp = (op: number, xid: number, secs: number, msgType: number): Uint8Array => {
    const p = new Uint8Array(300);
    p[0] = op;
    p[1] = 1;
    p[2] = 6;
    p.set([xid >>> 24, (xid >>> 16) & 0xff, (xid >>> 8) & 0xff, xid & 0xff], 4);
    p[8] = secs >> 8;
    p[9] = secs & 0xff;
    p.set([0x63, 0x82, 0x53, 0x63, 53, 1, msgType, 255], 236);
    return p;
  };
  const disc = (xid: number, secs: number) => buildFrame({ ...G, ipSrc: '0.0.0.0', ipDst: '255.255.255.255', proto: 'udp', srcPort: 68, dstPort: 67, payload: bootp(1, xid, secs, 1) });
  const offer = (xid: number) => buildFrame({ ...W, ipDst: '255.255.255.255', proto: 'udp', srcPort: 67, dstPort: 68, payload: bootp(2, xid, 0, 2) });
  const req = (xid: number) => buildFrame({ ...G, ipSrc: '0.0.0.0', ipDst: '255.255.255.255', proto: 'udp', srcPort: 68, dstPort: 67, payload: bootp(1, xid, 0, 3) });
  const r = run(seqd([[true, disc(0x1111, 0)], [false, offer(0x1111)], [true, req(0x1111)]]));
  r.e.start(0);
  r.e.guestFrame(disc(0x2222, 0), 1);
  assert.equal(r.divs.length, 0);
  assert.equal(r.e.mappings.txidsLearned, 1);
  const o = new PacketView().decode(r.injected[0]!);
  assert.deepEqual([...r.injected[0]!.subarray(o.payloadOffset + 4, o.payloadOffset + 8)], [0, 0, 0x22, 0x22], 'the offer carries the live xid');
  r.e.guestFrame(disc(0x2222, 3), 2); // udhcpc's retry, 3 s later
  assert.equal(r.divs.length, 0);
  assert.equal(r.e.stats.retransmissions, 1);
  r.e.guestFrame(req(0x2222), 3);
  assert.equal(r.divs.length, 0);
  assert.ok(r.isFinished());
  assert.equal(r.e.mappings.txidsLearned, 1, 'no id learned from a message that did not match');
});

test('ICMP: a fresh echo identifier and fresh echo data are learned together; the reply follows both', () => {
  const echo = (id: number, data: string, type = 8) => buildFrame({ ...(type === 8 ? G : W), proto: 'icmp', icmpType: type, icmpId: id, payload: data });
  const r = run(seqd([[true, echo(107, 'time=1000')], [false, echo(107, 'time=1000', 0)]]));
  r.e.start(0);
  r.e.guestFrame(echo(108, 'time=2000'), 1);
  assert.equal(r.divs.length, 0);
  const v = new PacketView().decode(r.injected[0]!);
  assert.equal(v.icmpId, 108);
  assert.equal(Buffer.from(r.injected[0]!.subarray(v.payloadOffset)).toString(), 'time=2000');
  assert.ok(r.isFinished());
});

test('DNS: a query from a fresh port with a fresh id learns both; the answer goes to the live port with the live id (checksum valid)', () => {
  const dns = (id: number, qr: boolean): Uint8Array => {
    const p = new Uint8Array(34);
    p.set([id >> 8, id & 0xff, qr ? 0x81 : 0x01, qr ? 0x80 : 0x00, 0, 1, 0, qr ? 1 : 0, 0, 0, 0, 0], 0);
    p.set([5, 0x66, 0x69, 0x6c, 0x65, 0x73, 0, 0, 1, 0, 1], 12);
    return p;
  };
  const query = (port: number, id: number) => buildFrame({ ...G, proto: 'udp', srcPort: port, dstPort: 53, payload: dns(id, false) });
  const answer = (port: number, id: number) => buildFrame({ ...W, proto: 'udp', srcPort: 53, dstPort: port, payload: dns(id, true) });
  const r = run(seqd([[true, query(37064, 0x90c8)], [false, answer(37064, 0x90c8)]]));
  r.e.start(0);
  r.e.guestFrame(query(47520, 0xb9a0), 1);
  assert.deepEqual(r.divs, []);
  assert.equal(r.e.mappings.txidsLearned, 1);
  assert.equal(r.e.learned.length, 1);
  const v = new PacketView().decode(r.injected[0]!);
  assert.equal(v.dstPort, 47520);
  assert.deepEqual([...r.injected[0]!.subarray(v.payloadOffset, v.payloadOffset + 2)], [0xb9, 0xa0]);
  assert.deepEqual(r.injected[0], answer(47520, 0xb9a0), 'byte-exact, checksum included');
  assert.ok(r.isFinished());
});

test('TFTP: the server answers from a fresh port (its transfer id); the guest port learned from the request follows the socket', () => {
  const rrq = (port: number) => buildFrame({ ...G, proto: 'udp', srcPort: port, dstPort: 69, payload: '\x00\x01tftp.bin\x00octet\x00' });
  const data = (port: number) => buildFrame({ ...W, proto: 'udp', srcPort: 57575, dstPort: port, payload: '\x00\x03\x00\x01abc' });
  const ack = (port: number) => buildFrame({ ...G, proto: 'udp', srcPort: port, dstPort: 57575, payload: '\x00\x04\x00\x01' });
  const r = run(seqd([[true, rrq(53131)], [false, data(53131)], [true, ack(53131)]]));
  r.e.start(0);
  r.e.guestFrame(rrq(34266), 1);
  assert.equal(r.injected.length, 1);
  assert.deepEqual(r.injected[0], data(34266), 'DATA from the new transfer id goes to the live port');
  r.e.guestFrame(ack(34266), 2);
  assert.deepEqual(r.divs, []);
  assert.ok(r.isFinished());
  assert.equal(r.e.learned.length, 1, 'one socket, one mapping');
});

test('streaming: the log arrives in batches, the engine holds at most its lookahead plus a batch, and finishes only after end()', () => {
  const N = 5000;
  const world = (i: number) => buildFrame({ ...W, proto: 'udp', srcPort: 7, dstPort: 5000, payload: `w${i}`.padEnd(200, '.') });
  const guest = (i: number) => buildFrame({ ...G, proto: 'udp', srcPort: 5000, dstPort: 7, payload: `g${i}`.padEnd(200, '.') });
  const recs: LoggedFrame[] = [];
  for (let i = 0; i < N; i++) {
    recs.push({ seq: 2 * i, fromGuest: false, tsNs: 0, frame: world(i) });
    recs.push({ seq: 2 * i + 1, fromGuest: true, tsNs: 0, frame: guest(i) });
  }
  const lookahead = 16 * 1024;
  const injected: Uint8Array[] = [];
  const divs: ReplayDivergence[] = [];
  let finished = false;
  const e = new ReplayEngine([], { pacing: 'causal', speed: 1, timeoutMs: 1000, continueOnDivergence: false, window: 8, lookaheadBytes: lookahead }, {
    inject: (f) => injected.push(f),
    divergence: (d) => divs.push(d),
    finished: () => (finished = true),
  }, true);
  let next = 0;
  let peak = 0;
  const BATCH = 50;
  const feed = (): void => {
    while (e.hungry && next < recs.length) {
      e.push(recs.slice(next, next + BATCH));
      next += BATCH;
      peak = Math.max(peak, e.heldBytes);
    }
    if (next >= recs.length) e.end();
  };
  feed();
  e.start(0);
  let answered = 0;
  while (answered < injected.length) {
    // The guest answers each world frame; the reader refills whenever the engine asks.
    e.guestFrame(guest(answered++), answered);
    feed();
  }
  assert.deepEqual(divs, []);
  assert.equal(answered, N);
  assert.ok(finished);
  // Consumed records are dropped once half of what is held is consumed: at most twice lookahead + a batch.
  assert.ok(peak <= 2 * (lookahead + BATCH * 2 * 250), `held at most ${peak} bytes`);
  assert.ok(peak < (N * 2 * 242) / 10, 'far less than the log');
});

test('recorded pacing says when its next world frame is due, so a driver can tick then rather than at its next regular tick', () => {
  const recs: LoggedFrame[] = [
    { seq: 0, fromGuest: true, tsNs: 0, frame: buildFrame({ ...G, proto: 'udp', srcPort: 999, dstPort: 69, payload: 'ack1' }) },
    { seq: 1, fromGuest: false, tsNs: 300_000, frame: buildFrame({ ...W, proto: 'udp', srcPort: 69, dstPort: 999, payload: 'data2' }) },
  ];
  const r = run(recs, { pacing: 'recorded' });
  r.e.start(0);
  assert.equal(r.e.nextInjectAtMs, Infinity, 'nothing waits for time before the guest frame');
  r.e.guestFrame(recs[0]!.frame, 100);
  assert.equal(r.injected.length, 0);
  assert.equal(r.e.nextInjectAtMs, 100.3, '0.3 ms after the guest frame it answers');
  r.e.tick(100.3);
  assert.equal(r.injected.length, 1);
  assert.equal(r.e.nextInjectAtMs, Infinity);
});

test('learning is a transaction: what a frame would teach is kept only when it matches', () => {
  const m = new FlowMappings();
  const txn = new LearnTxn();
  const live = new PacketView().decode(buildFrame({ ...G, proto: 'udp', srcPort: 41000, dstPort: 53, payload: 'q' }));
  const rec = new PacketView().decode(buildFrame({ ...G, proto: 'udp', srcPort: 40000, dstPort: 53, payload: 'q' }));
  assert.notEqual(m.proposeFlow(txn, live, rec), null);
  m.proposeTxid(txn, 'aaaa', 'bbbb');
  assert.equal(m.forLive(live), undefined, 'proposed, not stored');
  txn.clear();
  m.commit(txn);
  assert.equal(m.forLive(live), undefined, 'a cleared transaction commits nothing');
  assert.equal(m.learned.length + m.txidsLearned + m.echoLearned, 0);
  m.proposeFlow(txn, live, rec);
  m.commit(txn);
  assert.equal(m.forLive(live)?.recPort, 40000);
  assert.equal(m.learned.length, 1);
});

test('a recorded guest retransmission is timing: the world frame after it does not wait for the live guest to repeat it', () => {
  const fin = buildFrame({ ...G, proto: 'tcp', srcPort: 1, dstPort: 2, seq: 10, ack: 20, tcpFlags: TCP_ACK | 0x01 });
  const ack = buildFrame({ ...W, proto: 'tcp', srcPort: 2, dstPort: 1, seq: 20, ack: 11, tcpFlags: TCP_ACK });
  // Recorded: the guest's FIN, the same FIN again (the world's ACK was lost), then the world's ACK.
  const r = run(seqd([[true, fin], [true, fin], [false, ack]]));
  r.e.start(0);
  r.e.guestFrame(fin, 1);
  assert.equal(r.injected.length, 1, 'the ACK went in without the repeat');
  assert.ok(r.isFinished());
  // A live repeat after all is a retransmission, not a divergence.
  r.e.guestFrame(fin, 2);
  assert.equal(r.divs.length, 0);
});
