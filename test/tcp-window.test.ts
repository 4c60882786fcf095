import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TcpWindows, seqAfter } from '../src/engine/replay/tcp-window.ts';
import { type LoggedFrame, ReplayEngine } from '../src/engine/replay/replay-engine.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../src/packet/l4.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { replayRig } from './helpers/replay-rig.ts';

const G = { src: '52:54:00:12:34:56', dst: '52:55:0a:00:02:02', ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
const W = { src: '52:55:0a:00:02:02', dst: '52:54:00:12:34:56', ipSrc: '10.0.2.2', ipDst: '10.0.2.15' };
const WS = [3, 3, 7, 0]; // TCP options: window scale (kind 3, length 3, shift 7), end of list

const guest = (o: { sport?: number; seq: number; ack?: number; flags: number; win?: number; payload?: string; ws?: boolean }): Uint8Array =>
  buildFrame({ ...G, proto: 'tcp', srcPort: o.sport ?? 40000, dstPort: 80, seq: o.seq, ack: o.ack ?? 0, tcpFlags: o.flags, window: o.win ?? 65535, payload: o.payload ?? '', ...(o.ws === true ? { tcpOptions: WS } : {}) });
const world = (o: { dport?: number; seq: number; ack: number; flags: number; len?: number; ws?: boolean }): Uint8Array =>
  buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: o.dport ?? 40000, seq: o.seq, ack: o.ack, tcpFlags: o.flags, payload: new Uint8Array(o.len ?? 0).fill(0x61), ...(o.ws === true ? { tcpOptions: WS } : {}) });
const view = (f: Uint8Array): PacketView => new PacketView().decode(f);

test('seqAfter wraps modulo 2^32', () => {
  assert.ok(seqAfter(5, 0xfffffff0));
  assert.ok(!seqAfter(0xfffffff0, 5));
  assert.ok(!seqAfter(7, 7));
});

test('a segment past the live edge but within the recorded edge is held; past both, it is not', () => {
  const w = new TcpWindows();
  w.recordedGuest(view(guest({ seq: 1000, flags: TCP_SYN })));
  w.liveGuest(view(guest({ seq: 1000, flags: TCP_SYN })));
  assert.equal(w.verdict(view(world({ seq: 5000, ack: 1001, flags: TCP_SYN | TCP_ACK }))), 'inject');
  w.recordedGuest(view(guest({ seq: 1001, ack: 5001, flags: TCP_ACK, win: 4000 }))); // recorded edge 9001
  w.liveGuest(view(guest({ seq: 1001, ack: 5001, flags: TCP_ACK, win: 2000 }))); // live edge 7001
  assert.equal(w.verdict(view(world({ seq: 5001, ack: 1001, flags: TCP_ACK, len: 2000 }))), 'inject', 'ends at the live edge');
  assert.equal(w.verdict(view(world({ seq: 7001, ack: 1001, flags: TCP_ACK, len: 1 }))), 'hold');
  assert.equal(w.verdict(view(world({ seq: 9000, ack: 1001, flags: TCP_ACK, len: 1 }))), 'hold', 'the last byte the recorded guest could take');
  assert.equal(w.verdict(view(world({ seq: 9001, ack: 1001, flags: TCP_ACK, len: 1 }))), 'inject', 'a probe beyond the recorded window too');
  assert.equal(w.verdict(view(world({ seq: 7001, ack: 1001, flags: TCP_ACK }))), 'inject', 'a pure ACK takes no window');
  // A window update moves the live edge; an older ACK does not move it back.
  assert.ok(w.liveGuest(view(guest({ seq: 1001, ack: 7001, flags: TCP_ACK, win: 2000 }))));
  assert.ok(!w.liveGuest(view(guest({ seq: 1001, ack: 5001, flags: TCP_ACK, win: 2000 }))));
  assert.ok(w.fitsLive(view(world({ seq: 7001, ack: 1001, flags: TCP_ACK, len: 2000 }))));
});

test('window scaling applies only when both SYNs carry it (RFC 7323)', () => {
  for (const both of [true, false]) {
    const w = new TcpWindows();
    w.recordedGuest(view(guest({ seq: 1, flags: TCP_SYN, ws: true })));
    w.liveGuest(view(guest({ seq: 1, flags: TCP_SYN, ws: true })));
    w.verdict(view(world({ seq: 100, ack: 2, flags: TCP_SYN | TCP_ACK, ws: both })));
    w.recordedGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK, win: 1000 })));
    w.liveGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK, win: 500 })));
    // Scaled: edges 101 + 128000 (recorded) and 101 + 64000 (live); unscaled: 1101 and 601.
    assert.equal(w.verdict(view(world({ seq: 101, ack: 2, flags: TCP_ACK, len: 1000 }))), both ? 'inject' : 'hold', `both=${both}`);
  }
});

test('scaling survives the recorded SYN being walked before the live SYN arrives (the order replay sees)', () => {
  const w = new TcpWindows();
  w.recordedGuest(view(guest({ seq: 1, flags: TCP_SYN, ws: true })));
  w.liveGuest(view(guest({ seq: 1, flags: TCP_SYN, ws: true })));
  w.verdict(view(world({ seq: 100, ack: 2, flags: TCP_SYN | TCP_ACK, ws: true })));
  w.recordedGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK, win: 1000 })));
  w.liveGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK, win: 1000 })));
  assert.equal(w.verdict(view(world({ seq: 101, ack: 2, flags: TCP_ACK, len: 1460 }))), 'inject', 'both edges 101 + 128000');
  assert.equal(w.verdict(view(world({ seq: 101 + 127000, ack: 2, flags: TCP_ACK, len: 1460 }))), 'inject', 'past both edges: a probe');
});

test('a new connection on the same ports starts fresh; RST forgets the flow', () => {
  const w = new TcpWindows();
  w.recordedGuest(view(guest({ seq: 1, flags: TCP_SYN })));
  w.liveGuest(view(guest({ seq: 1, flags: TCP_SYN })));
  w.recordedGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK, win: 1000 })));
  w.liveGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK, win: 10 })));
  assert.equal(w.verdict(view(world({ seq: 101, ack: 2, flags: TCP_ACK, len: 100 }))), 'hold');
  w.liveGuest(view(guest({ seq: 2, ack: 101, flags: TCP_ACK | 0x04 })));
  assert.equal(w.verdict(view(world({ seq: 101, ack: 2, flags: TCP_ACK, len: 100 }))), 'inject', 'forgotten after RST');
  assert.equal(w.size, 0);
});

test('property: never held when it fits the live window or lies beyond the recorded one', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 50_000 }), fc.integer({ min: 0, max: 65535 })), { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 1460 }), (acks, segStart, len) => {
      const w = new TcpWindows();
      const base = 0xffff0000; // exercise the wrap
      w.recordedGuest(view(guest({ seq: 1, flags: TCP_SYN })));
      w.liveGuest(view(guest({ seq: 1, flags: TCP_SYN })));
      let rec = -1;
      let live = -1;
      for (const [isLive, ack, win] of acks) {
        const f = view(guest({ seq: 2, ack: (base + ack) >>> 0, flags: TCP_ACK, win }));
        const edge = ack + win;
        if (isLive) {
          w.liveGuest(f);
          live = Math.max(live, edge);
        } else {
          w.recordedGuest(f);
          rec = Math.max(rec, edge);
        }
      }
      const seg = view(world({ seq: (base + segStart) >>> 0, ack: 2, flags: TCP_ACK, len }));
      const verdict = w.verdict(seg);
      const end = segStart + len;
      if (len === 0 || live < 0 || rec < 0 || end <= live || end > rec) assert.equal(verdict, 'inject');
      else assert.equal(verdict, 'hold');
    }),
  );
});

const engine = replayRig;

const log = (frames: [boolean, Uint8Array, number?][]): LoggedFrame[] => frames.map(([fromGuest, frame, ms], i) => ({ seq: i, fromGuest, tsNs: (ms ?? i) * 1_000_000, frame }));

/** A download: the recorded guest's window took four 1000-byte segments at once; the world answered with all four and a FIN. */
function download(dport = 40000, sport = 40000): LoggedFrame[] {
  return log([
    [true, guest({ sport, seq: 1000, flags: TCP_SYN })],
    [false, world({ dport, seq: 5000, ack: 1001, flags: TCP_SYN | TCP_ACK })],
    [true, guest({ sport, seq: 1001, ack: 5001, flags: TCP_ACK, win: 4000 })],
    [true, guest({ sport, seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 4000, payload: 'GET' })],
    [false, world({ dport, seq: 5001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [false, world({ dport, seq: 6001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [false, world({ dport, seq: 7001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [false, world({ dport, seq: 8001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [true, guest({ sport, seq: 1004, ack: 9001, flags: TCP_ACK, win: 4000 })],
    [false, world({ dport, seq: 9001, ack: 1004, flags: TCP_ACK | TCP_FIN })],
    [true, guest({ sport, seq: 1004, ack: 9002, flags: TCP_ACK | TCP_FIN, win: 4000 })],
  ]);
}

test('engine: world data waits for the live guest window instead of being pushed past it', () => {
  const r = engine(download());
  r.e.start(0);
  r.e.guestFrame(guest({ sport: 41000, seq: 777, flags: TCP_SYN }), 1);
  assert.equal(r.injected.length, 1, 'the SYN-ACK');
  // This boot's guest has room for two segments only.
  r.e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK, win: 2000 }), 2);
  r.e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 2000, payload: 'GET' }), 3);
  assert.equal(r.injected.length, 3, 'two data segments; two more and the FIN wait');
  assert.equal(r.e.stats.windowWaits, 3);
  assert.equal(r.e.windowHeld, 3);
  // Nothing is due while world frames before it wait: no timeout runs.
  r.e.tick(500);
  assert.equal(r.divs.length, 0);
  // The guest reads the data and opens its window (a timing-driven ACK).
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 7001, flags: TCP_ACK, win: 2000 }), 600);
  assert.equal(r.injected.length, 5, 'the rest of the data');
  assert.equal(r.e.windowHeld, 1, 'the FIN takes sequence space past the edge');
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9001, flags: TCP_ACK, win: 2000 }), 700);
  assert.equal(r.injected.length, 6);
  const last = view(r.injected[5]!);
  assert.equal(last.tcpFlags & TCP_FIN, TCP_FIN);
  assert.equal(last.dstPort, 41000, 'rewritten to the live port');
  r.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9002, flags: TCP_ACK | TCP_FIN, win: 2000 }), 800);
  assert.equal(r.divs.length, 0);
  assert.ok(r.isFinished());
  assert.equal(r.e.stats.windowWaitsExpired, 0);
  // The same download with a guest as roomy as the recorded one waits for nothing.
  const q = engine(download());
  q.e.start(0);
  q.e.guestFrame(guest({ sport: 41000, seq: 777, flags: TCP_SYN }), 1);
  q.e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 4000, payload: 'GET' }), 3);
  assert.equal(q.injected.length, 5, 'all the data at once; the FIN, past the edge, waits for the ACK the recorded guest had sent');
  q.e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9001, flags: TCP_ACK, win: 4000 }), 4);
  assert.equal(q.injected.length, 6);
  assert.equal(q.e.stats.windowWaits, 1);
});

test('engine: a hold that outlives the timeout injects anyway and is counted (the deadlock guard)', () => {
  const r = engine(download());
  r.e.start(0);
  r.e.guestFrame(guest({ sport: 41000, seq: 777, flags: TCP_SYN }), 1);
  r.e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 1000, payload: 'GET' }), 2);
  assert.equal(r.injected.length, 2);
  r.e.tick(900);
  assert.equal(r.injected.length, 2);
  r.e.tick(1100);
  assert.equal(r.e.stats.injected, 6, 'everything held went in, in order');
  assert.equal(r.e.stats.windowWaitsExpired, 4, 'three data segments and the FIN waited for the window');
  // And the first segment again: the guest has not acknowledged it for a second (world-retransmit.ts).
  assert.deepEqual(r.injected.slice(2).map((f) => view(f).tcpSeq), [6001, 7001, 8001, 9001, 5001]);
  assert.equal(r.e.stats.worldResent, 1);
});

test('engine: one flow waiting for its window does not hold up another flow', () => {
  const a = download(40000, 40000);
  const b = download(40001, 40001);
  // Interleave: both handshakes and requests, A's data, B's data, then both closes.
  const recs = log([...a.slice(0, 4), ...b.slice(0, 4), ...a.slice(4, 8), ...b.slice(4, 8), ...a.slice(8), ...b.slice(8)].map((r) => [r.fromGuest, r.frame] as [boolean, Uint8Array]));
  const r = engine(recs, { window: 16 });
  r.e.start(0);
  r.e.guestFrame(guest({ sport: 50000, seq: 1, flags: TCP_SYN }), 1);
  r.e.guestFrame(guest({ sport: 50000, seq: 2, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 1000, payload: 'GET' }), 2);
  r.e.guestFrame(guest({ sport: 50001, seq: 9, flags: TCP_SYN }), 3);
  r.e.guestFrame(guest({ sport: 50001, seq: 10, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 4000, payload: 'GET' }), 4);
  const toB = r.injected.map(view).filter((v) => v.dstPort === 50001 && v.payloadLength > 0);
  assert.equal(toB.length, 4, "B's data went in while A waits");
  assert.equal(r.e.windowHeld, 4, "A's three segments and its FIN");
  assert.equal(r.divs.length, 0);
});

test('recorded pacing: a guest frame is not due while a world frame recorded before it has not gone in (the reply came late)', () => {
  // The world's reply came 5 s after the request; the timeout is 1 s.
  const recs = log([
    [true, buildFrame({ ...G, proto: 'udp', srcPort: 999, dstPort: 53, payload: 'q' }), 0],
    [false, buildFrame({ ...W, proto: 'udp', srcPort: 53, dstPort: 999, payload: 'a' }), 5000],
    [true, buildFrame({ ...G, proto: 'udp', srcPort: 999, dstPort: 53, payload: 'next' }), 5001],
  ]);
  const r = engine(recs, { pacing: 'recorded' });
  r.e.start(0);
  r.e.guestFrame(recs[0]!.frame, 10);
  for (let t = 100; t < 5000; t += 100) r.e.tick(t);
  assert.equal(r.divs.length, 0, 'the next guest frame was not due before the reply went in');
  assert.equal(r.injected.length, 0);
  r.e.tick(5010);
  assert.equal(r.injected.length, 1);
  r.e.tick(6500);
  assert.equal(r.divs.length, 1, 'once the reply is in, a missing answer times out');
  assert.equal(r.divs[0]!.kind, 'missing');
});

test('engine: a retransmission that fills the hole the live ACK is stuck at goes past the frames waiting for the window', () => {
  // Recorded: the world's segment at 5001 was lost; the guest ACKed 5001 with room for 2000; the world retransmitted it last.
  const recs = log([
    [true, guest({ seq: 1000, flags: TCP_SYN })],
    [false, world({ seq: 5000, ack: 1001, flags: TCP_SYN | TCP_ACK })],
    [true, guest({ seq: 1001, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 3000, payload: 'GET' })],
    [false, world({ seq: 6001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [false, world({ seq: 7001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [false, world({ seq: 5001, ack: 1004, flags: TCP_ACK, len: 1000 })],
    [true, guest({ seq: 1004, ack: 8001, flags: TCP_ACK | TCP_FIN, win: 3000 })],
  ]);
  const r = engine(recs);
  r.e.start(0);
  r.e.guestFrame(guest({ sport: 41000, seq: 1, flags: TCP_SYN }), 1);
  // This boot's guest offers 2000: 6001..7001 fits, 7001..8001 waits; the retransmission of 5001 must not wait behind it.
  r.e.guestFrame(guest({ sport: 41000, seq: 2, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 2000, payload: 'GET' }), 2);
  assert.deepEqual(r.injected.slice(1).map((f) => view(f).tcpSeq), [6001, 5001]);
  assert.equal(r.e.windowHeld, 1);
  // The hole filled, the guest ACKs 7001 and 7001..8001 fits.
  r.e.guestFrame(guest({ sport: 41000, seq: 5, ack: 7001, flags: TCP_ACK, win: 2000 }), 3);
  assert.deepEqual(r.injected.slice(1).map((f) => view(f).tcpSeq), [6001, 5001, 7001]);
  r.e.guestFrame(guest({ sport: 41000, seq: 5, ack: 8001, flags: TCP_ACK | TCP_FIN, win: 2000 }), 4);
  assert.deepEqual(r.divs, []);
  assert.ok(r.isFinished());
  assert.equal(r.e.stats.windowWaitsExpired, 0);
});

test('streaming: a live ACK that arrives while the loaded log holds only timing-driven ACKs still opens the window (and is judged once more log comes)', () => {
  const all = download();
  // The log up to the data and the recorded guest's ACK; the FIN exchange not loaded yet.
  const first = all.slice(0, 9);
  const rest = all.slice(9);
  const r = replayRig([], {});
  // A reorder window of 1, so that the request is judged with the log loaded so far.
  const e = new ReplayEngine([], { pacing: 'causal', speed: 1, timeoutMs: 1000, continueOnDivergence: false, window: 1 }, { inject: (f) => r.injected.push(f), divergence: (d) => r.divs.push(d), finished: () => {} }, true);
  e.push(first);
  e.start(0);
  e.guestFrame(guest({ sport: 41000, seq: 777, flags: TCP_SYN }), 1);
  e.guestFrame(guest({ sport: 41000, seq: 778, ack: 5001, flags: TCP_ACK | TCP_PSH, win: 2000, payload: 'GET' }), 2);
  assert.equal(r.injected.length, 3, 'the SYN-ACK and two segments; two wait for the window');
  assert.equal(e.windowHeld, 2);
  // Nothing the guest must send is loaded now (only its recorded ACK): this ACK waits to be judged, but opens the window at once.
  e.guestFrame(guest({ sport: 41000, seq: 781, ack: 7001, flags: TCP_ACK, win: 2000 }), 3);
  assert.equal(r.injected.length, 5);
  assert.equal(e.windowHeld, 0);
  assert.equal(e.stats.afterEnd, 0, 'not counted as coming after the end: the log has not ended');
  e.push(rest);
  e.end();
  e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9001, flags: TCP_ACK, win: 2000 }), 4);
  e.guestFrame(guest({ sport: 41000, seq: 781, ack: 9002, flags: TCP_ACK | TCP_FIN, win: 2000 }), 5);
  assert.deepEqual(r.divs, []);
  assert.ok(e.finished);
  assert.equal(e.stats.windowWaitsExpired, 0);
});
