import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RETRANSMIT_INITIAL_MS, RETRANSMIT_MAX_MS, WorldRetransmit } from '../src/engine/replay/world-retransmit.ts';
import { type LoggedFrame } from '../src/engine/replay/replay-engine.ts';
import { seqAfter } from '../src/engine/replay/tcp-window.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../src/packet/l4.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { verifyL4Checksum } from '../src/packet/checksum.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { replayRig } from './helpers/replay-rig.ts';

const G = { src: '52:54:00:12:34:56', dst: '52:55:0a:00:02:02', ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
const W = { src: '52:55:0a:00:02:02', dst: '52:54:00:12:34:56', ipSrc: '10.0.2.2', ipDst: '10.0.2.15' };

/** A SACK option (RFC 2018 §3) with these [left, right) blocks, after two NOPs. */
function sackOption(blocks: [number, number][]): number[] {
  const o = [1, 1, 5, 2 + 8 * blocks.length];
  for (const [l, r] of blocks) for (const x of [l, r]) o.push(x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
  return o;
}
const guest = (o: { sport?: number; seq: number; ack?: number; flags: number; win?: number; payload?: string; sack?: [number, number][] }): Uint8Array =>
  buildFrame({ ...G, proto: 'tcp', srcPort: o.sport ?? 40000, dstPort: 80, seq: o.seq, ack: o.ack ?? 0, tcpFlags: o.flags, window: o.win ?? 65535, payload: o.payload ?? '', ...(o.sack !== undefined ? { tcpOptions: sackOption(o.sack) } : {}) });
const world = (o: { dport?: number; seq: number; ack: number; flags: number; len?: number }): Uint8Array =>
  buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: o.dport ?? 40000, seq: o.seq, ack: o.ack, tcpFlags: o.flags, payload: new Uint8Array(o.len ?? 0).fill(0x61) });
const view = (f: Uint8Array): PacketView => new PacketView().decode(f);

const SYN_ACK = world({ seq: 5000, ack: 1001, flags: TCP_SYN | TCP_ACK });
const SEGMENT_BYTES = world({ seq: 0, ack: 0, flags: TCP_ACK, len: 1000 }).length;

/** The world's SYN-ACK, five 1000-byte world segments from 5001, the guest's ACK at 5001. */
function fiveInjected(): WorldRetransmit {
  const w = new WorldRetransmit();
  w.injected(view(SYN_ACK), 0);
  w.liveGuest(view(guest({ seq: 1001, ack: 5001, flags: TCP_ACK })), 0);
  for (let i = 0; i < 5; i++) w.injected(view(world({ seq: 5001 + i * 1000, ack: 1001, flags: TCP_ACK, len: 1000 })), 1);
  return w;
}
/** The sequence numbers of the segments due again now. */
const due = (w: WorldRetransmit, nowMs: number): number[] => {
  const out: Uint8Array[] = [];
  w.due(nowMs, out);
  return out.map((f) => view(f).tcpSeq);
};

test('a segment the guest does not acknowledge is sent again after the timeout, which then backs off; progress resets it', () => {
  const w = fiveInjected();
  assert.equal(w.size, 5);
  // The guest took the first two, then lost the third.
  w.liveGuest(view(guest({ seq: 1001, ack: 7001, flags: TCP_ACK })), 10);
  assert.equal(w.size, 3);
  assert.equal(w.bytes, 3 * SEGMENT_BYTES);
  assert.deepEqual(due(w, 10 + RETRANSMIT_INITIAL_MS - 1), []);
  assert.deepEqual(due(w, 10 + RETRANSMIT_INITIAL_MS), [7001], 'no SACK: only the segment at the ACK point');
  assert.deepEqual(due(w, 10 + RETRANSMIT_INITIAL_MS * 2), [], 'the timeout doubled');
  assert.deepEqual(due(w, 10 + RETRANSMIT_INITIAL_MS * 3), [7001]);
  let t = 10 + RETRANSMIT_INITIAL_MS * 3;
  for (let i = 0; i < 4; i++) {
    t += RETRANSMIT_MAX_MS;
    assert.deepEqual(due(w, t), [7001], 'capped at the maximum');
  }
  w.liveGuest(view(guest({ seq: 1001, ack: 9001, flags: TCP_ACK })), t + 1);
  assert.equal(w.size, 1);
  assert.deepEqual(due(w, t + RETRANSMIT_INITIAL_MS), [], 'a progress resets the timer');
  assert.deepEqual(due(w, t + 1 + RETRANSMIT_INITIAL_MS), [9001]);
  assert.equal(w.stats.timeouts, 7);
  assert.equal(w.stats.segments, 7);
});

test('three duplicate ACKs send again what the SACK blocks do not hold, up to the highest SACKed byte', () => {
  const w = fiveInjected();
  // Lost: 5001-6001 and 7001-8001; SACKed: 6001-7001 and 8001-9001; 9001-10001 not yet arrived.
  const dup = guest({ seq: 1001, ack: 5001, flags: TCP_ACK, sack: [[8001, 9001], [6001, 7001]] });
  assert.equal(w.liveGuest(view(dup), 2), false);
  assert.equal(w.liveGuest(view(dup), 3), false);
  assert.equal(w.liveGuest(view(dup), 4), true, 'the third duplicate');
  assert.deepEqual(due(w, 4), [5001, 7001]);
  assert.equal(w.stats.fast, 1);
  // Further duplicates from segments already on the way do not start another round at once.
  for (let i = 0; i < 6; i++) assert.equal(w.liveGuest(view(dup), 5 + i), false);
  assert.deepEqual(due(w, 11), []);
});

test('a duplicate ACK counts only when its SACK blocks reach data sent after the segment at the ACK point (it may only be late)', () => {
  const w = new WorldRetransmit();
  w.injected(view(SYN_ACK), 0);
  w.liveGuest(view(guest({ seq: 1001, ack: 5001, flags: TCP_ACK })), 0);
  for (let i = 1; i < 5; i++) w.injected(view(world({ seq: 5001 + i * 1000, ack: 1001, flags: TCP_ACK, len: 1000 })), 1);
  // The log's retransmission of 5001 goes in after 6001-10001; the guest's ACKs for those are still on their way.
  w.injected(view(world({ seq: 5001, ack: 1001, flags: TCP_ACK, len: 1000 })), 2);
  const late = guest({ seq: 1001, ack: 5001, flags: TCP_ACK, sack: [[6001, 10001]] });
  for (let i = 0; i < 6; i++) assert.equal(w.liveGuest(view(late), 3 + i), false);
  // Data sent after it arrived, and it did not: lost.
  w.injected(view(world({ seq: 10001, ack: 1001, flags: TCP_ACK, len: 1000 })), 10);
  const lost = guest({ seq: 1001, ack: 5001, flags: TCP_ACK, sack: [[6001, 11001]] });
  assert.equal(w.liveGuest(view(lost), 11), false);
  assert.equal(w.liveGuest(view(lost), 12), false);
  assert.equal(w.liveGuest(view(lost), 13), true);
  assert.deepEqual(due(w, 13), [5001], 'the rest is SACKed');
  // Without SACK blocks a duplicate ACK proves nothing: only the timer sends again.
  const plain = guest({ seq: 1001, ack: 5001, flags: TCP_ACK });
  for (let i = 0; i < 6; i++) assert.equal(w.liveGuest(view(plain), 14 + i), false);
  assert.deepEqual(due(w, 13 + RETRANSMIT_INITIAL_MS), [5001]);
});

test('a hole the recording had (no injected segment covers the ACK point) is left to the log', () => {
  const w = new WorldRetransmit();
  w.injected(view(SYN_ACK), 0);
  w.liveGuest(view(guest({ seq: 1001, ack: 5001, flags: TCP_ACK })), 0);
  // 5001-6001 never reached the recorded guest: the log goes on at 6001.
  for (let i = 1; i < 5; i++) w.injected(view(world({ seq: 5001 + i * 1000, ack: 1001, flags: TCP_ACK, len: 1000 })), 1);
  const dup = guest({ seq: 1001, ack: 5001, flags: TCP_ACK, sack: [[6001, 10001]] });
  for (let i = 0; i < 5; i++) assert.equal(w.liveGuest(view(dup), 2 + i), false);
  assert.deepEqual(due(w, 5000), []);
  // The log's retransmission goes in (after the later data): kept in sequence order, and the same segment twice is kept once.
  w.injected(view(world({ seq: 5001, ack: 1001, flags: TCP_ACK, len: 1000 })), 6000);
  w.injected(view(world({ seq: 5001, ack: 1001, flags: TCP_ACK, len: 1000 })), 6001);
  assert.equal(w.size, 5);
  assert.equal(w.bytes, 5 * SEGMENT_BYTES);
  assert.deepEqual(due(w, 6000 + RETRANSMIT_INITIAL_MS), [5001], 'lost in the guest as well: sent again');
});

test('a SYN or RST forgets a flow; pure ACKs and flows whose SYN was not seen are not kept', () => {
  const w = fiveInjected();
  w.injected(view(world({ seq: 1, ack: 1, flags: TCP_ACK })), 2);
  w.injected(view(world({ dport: 40001, seq: 1, ack: 1, flags: TCP_ACK, len: 10 })), 2);
  assert.equal(w.size, 5);
  w.injected(view(world({ dport: 40002, seq: 1, ack: 1, flags: TCP_SYN | TCP_ACK })), 2);
  w.injected(view(world({ dport: 40002, seq: 2, ack: 1, flags: TCP_ACK, len: 10 })), 2);
  assert.equal(w.size, 6);
  w.injected(view(world({ seq: 90000, ack: 1001, flags: TCP_SYN | TCP_ACK })), 3);
  assert.equal(w.size, 1);
  assert.equal(w.bytes, world({ seq: 2, ack: 1, flags: TCP_ACK, len: 10 }).length);
  w.liveGuest(view(guest({ sport: 40002, seq: 1, ack: 2, flags: TCP_ACK | 0x04 })), 4);
  assert.equal(w.size, 0);
  assert.equal(w.bytes, 0);
});

test('property: only injected segments not yet acknowledged are sent again, each at most once per round', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.array(fc.integer({ min: 1, max: 1460 }), { minLength: 1, maxLength: 40 }), fc.array(fc.nat({ max: 60_000 }), { maxLength: 20 }), (isn, lens, acks) => {
      const w = new WorldRetransmit();
      const ends = new Map<number, number>();
      w.injected(view(world({ seq: isn, ack: 1, flags: TCP_SYN | TCP_ACK })), 0);
      let seq = (isn + 1) >>> 0;
      w.liveGuest(view(guest({ seq: 1, ack: seq, flags: TCP_ACK })), 0);
      for (const len of lens) {
        w.injected(view(world({ seq, ack: 1, flags: TCP_ACK, len })), 1);
        ends.set(seq, (seq + len) >>> 0);
        seq = (seq + len) >>> 0;
      }
      let ack = (isn + 1) >>> 0;
      let t = 2;
      for (const a of acks) {
        const next = (isn + 1 + a) >>> 0;
        if (seqAfter(next, ack) && !seqAfter(next, seq)) ack = next;
        w.liveGuest(view(guest({ seq: 1, ack, flags: TCP_ACK })), t);
        t += RETRANSMIT_MAX_MS;
        const out = due(w, t);
        assert.equal(new Set(out).size, out.length);
        for (const s of out) {
          assert.ok(ends.has(s), 'an injected segment');
          assert.ok(seqAfter(ends.get(s)!, ack), 'not acknowledged');
        }
        if (out.length > 0) assert.ok(!seqAfter(out[0]!, ack), 'the first covers the ACK point');
      }
    }),
  );
});

const log = (frames: [boolean, Uint8Array, number?][]): LoggedFrame[] => frames.map(([fromGuest, frame, ms], i) => ({ seq: i, fromGuest, tsNs: (ms ?? i) * 1_000_000, frame }));

test('engine: a segment the live guest lost is injected again on duplicate ACKs, and the replay completes', () => {
  const r = replayRig(
    log([
      [true, guest({ seq: 1000, flags: TCP_SYN })],
      [false, world({ seq: 5000, ack: 1001, flags: TCP_SYN | TCP_ACK })],
      [true, guest({ seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'GET' })],
      [false, world({ seq: 5001, ack: 1004, flags: TCP_ACK, len: 1000 })],
      [false, world({ seq: 6001, ack: 1004, flags: TCP_ACK, len: 1000 })],
      [false, world({ seq: 7001, ack: 1004, flags: TCP_ACK, len: 1000 })],
      [false, world({ seq: 8001, ack: 1004, flags: TCP_ACK, len: 1000 })],
      [true, guest({ seq: 1004, ack: 9001, flags: TCP_ACK })],
      [false, world({ seq: 9001, ack: 1004, flags: TCP_ACK | TCP_FIN })],
      [true, guest({ seq: 1004, ack: 9002, flags: TCP_ACK | TCP_FIN })],
    ]),
  );
  r.e.start(0);
  r.e.guestFrame(guest({ sport: 41000, seq: 777, flags: TCP_SYN }), 1);
  r.e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'GET' }), 2);
  assert.equal(r.injected.length, 6, 'the SYN-ACK, four segments and the FIN (the recorded ACK before it is timing)');
  // This guest dropped the first segment and holds the other three.
  for (let t = 3; t < 6; t++) r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 5001, flags: TCP_ACK, sack: [[6001, 9001]] }), t);
  assert.equal(r.injected.length, 7);
  const again = view(r.injected[6]!);
  assert.equal(again.tcpSeq, 5001);
  assert.equal(again.dstPort, 41000, 'rewritten to the live port');
  assert.equal(r.e.stats.worldResent, 1);
  assert.equal(r.e.stats.injected, 6, 'a segment sent again is not a new injection');
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9001, flags: TCP_ACK }), 7);
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9002, flags: TCP_ACK | TCP_FIN }), 8);
  assert.equal(r.divs.length, 0);
  assert.ok(r.isFinished());
});

test('engine: on a timeout (no duplicate ACKs: the guest went quiet) the segment at its ACK point goes again, kept though the log moved on', () => {
  const frames: [boolean, Uint8Array, number?][] = [
    [true, guest({ seq: 1000, flags: TCP_SYN })],
    [false, world({ seq: 5000, ack: 1001, flags: TCP_SYN | TCP_ACK })],
    [true, guest({ seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'GET' })],
  ];
  // Enough segments after it that the engine trims consumed records.
  for (let i = 0; i < 3000; i++) frames.push([false, world({ seq: 5001 + i * 100, ack: 1004, flags: TCP_ACK, len: 100 })]);
  frames.push([true, guest({ seq: 1004, ack: 5001 + 300_000, flags: TCP_ACK | TCP_FIN })]);
  const r = replayRig(log(frames), { timeoutMs: 10_000 });
  r.e.start(0);
  r.e.guestFrame(guest({ sport: 41000, seq: 777, flags: TCP_SYN }), 1);
  r.e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'GET' }), 2);
  assert.equal(r.injected.length, 3001);
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 5001 + 150_000, flags: TCP_ACK }), 3);
  r.e.tick(3 + RETRANSMIT_INITIAL_MS);
  assert.equal(r.injected.length, 3002);
  assert.equal(view(r.injected[3001]!).tcpSeq, 5001 + 150_000);
  assert.ok(r.e.retransmit.bytes > 0);
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 5001 + 300_000, flags: TCP_ACK | TCP_FIN }), 2000);
  assert.equal(r.divs.length, 0);
  assert.ok(r.isFinished());
  assert.equal(r.e.retransmit.size, 0);
});

test('engine: a segment sent again carries no TSval older than one the guest already took (PAWS would drop it for good)', () => {
  const TS = (tsval: number, tsecr: number): number[] => [1, 1, 8, 10, tsval >>> 24, (tsval >>> 16) & 255, (tsval >>> 8) & 255, tsval & 255, tsecr >>> 24, (tsecr >>> 16) & 255, (tsecr >>> 8) & 255, tsecr & 255];
  const g = (o: { sport?: number; seq: number; ack?: number; flags: number; payload?: string; ts: number; sack?: [number, number][] }): Uint8Array =>
    buildFrame({ ...G, proto: 'tcp', srcPort: o.sport ?? 40000, dstPort: 80, seq: o.seq, ack: o.ack ?? 0, tcpFlags: o.flags, window: 65535, payload: o.payload ?? '', tcpOptions: [...TS(o.ts, 0), ...(o.sack !== undefined ? sackOption(o.sack) : [])] });
  const w = (seq: number, flags: number, tsval: number, len = 0): Uint8Array =>
    buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: 40000, seq, ack: 1004, tcpFlags: flags, payload: new Uint8Array(len).fill(0x61), tcpOptions: TS(tsval, 7000) });
  const r = replayRig(
    log([
      [true, g({ seq: 1000, flags: TCP_SYN, ts: 7000 })],
      [false, w(5000, TCP_SYN | TCP_ACK, 100)],
      [true, g({ seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'GET', ts: 7001 })],
      [false, w(5001, TCP_ACK, 101, 1000)],
      [false, w(6001, TCP_ACK, 102, 1000)],
      [false, w(7001, TCP_ACK, 103, 1000)],
      [false, w(8001, TCP_ACK, 104, 1000)],
      [true, g({ seq: 1004, ack: 9001, flags: TCP_ACK, ts: 7002 })],
      [false, w(9001, TCP_ACK | TCP_FIN, 105)],
      [true, g({ seq: 1004, ack: 9002, flags: TCP_ACK | TCP_FIN, ts: 7003 })],
    ]),
  );
  r.e.start(0);
  r.e.guestFrame(g({ sport: 41000, seq: 777, flags: TCP_SYN, ts: 50 }), 1);
  r.e.guestFrame(g({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, payload: 'GET', ts: 51 }), 2);
  assert.equal(r.injected.length, 6);
  const tsval = (f: Uint8Array): number => {
    const v = view(f);
    return ((f[v.tcpTsOffset]! << 24) | (f[v.tcpTsOffset + 1]! << 16) | (f[v.tcpTsOffset + 2]! << 8) | f[v.tcpTsOffset + 3]!) >>> 0;
  };
  for (let t = 3; t < 6; t++) r.e.guestFrame(g({ sport: 41000, seq: 781, ack: 5001, flags: TCP_ACK, ts: 52, sack: [[6001, 9001]] }), t);
  assert.equal(r.injected.length, 7);
  const again = view(r.injected[6]!);
  assert.equal(again.tcpSeq, 5001);
  assert.equal(tsval(r.injected[6]!), 105, 'raised from 101 to the newest sent (the FIN\'s)');
  assert.equal(verifyL4Checksum(again), true, 'the checksum follows');
  assert.equal(r.e.learned[0]!.tsvalRaised, 1);
});
