import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GuestStreams } from '../src/engine/replay/guest-stream.ts';
import { type LoggedFrame, type ReplayDivergence, ReplayEngine } from '../src/engine/replay/replay-engine.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../src/packet/l4.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from './helpers/build-packet.ts';

const G = { src: '52:54:00:12:34:56', dst: '52:55:0a:00:02:02', ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
const W = { src: '52:55:0a:00:02:02', dst: '52:54:00:12:34:56', ipSrc: '10.0.2.2', ipDst: '10.0.2.15' };
const ISN = 0xfffff000; // the stream wraps past 2^32
const body = Uint8Array.from({ length: 6000 }, (_, i) => (i * 31 + 7) & 0xff);

const seg = (from: number, to: number, flags = TCP_ACK | TCP_PSH, data = body, sport = 40000): Uint8Array =>
  buildFrame({ ...G, proto: 'tcp', srcPort: sport, dstPort: 80, seq: (ISN + 1 + from) >>> 0, ack: 5001, tcpFlags: flags, payload: data.subarray(from, to) });
const view = (f: Uint8Array): PacketView => new PacketView().decode(f);
const syn = (sport = 40000): Uint8Array => buildFrame({ ...G, proto: 'tcp', srcPort: sport, dstPort: 80, seq: ISN, tcpFlags: TCP_SYN });

/** The recorded segments of a stream cut at `cuts`, and a match() that records which ones it covered (by their index in the cut). */
function recorded(cuts: number[], covered: number[], fin = false): { ids: number[]; views: PacketView[]; match: (s: GuestStreams, live: Uint8Array) => string; splice: (from: number, n: number) => void } {
  const ids: number[] = [];
  const views: PacketView[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const last = i + 2 === cuts.length;
    ids.push(i);
    views.push(view(seg(cuts[i]!, cuts[i + 1]!, TCP_ACK | (last && fin ? TCP_FIN : 0))));
  }
  return {
    ids,
    views,
    match: (s, live) => s.match(view(live), views, views.length, (i) => covered.push(ids[i]!)),
    splice: (from, n) => {
      ids.splice(from, n);
      views.splice(from, n);
    },
  };
}

test('a stream cut into other segments is accepted; a recorded segment counts once the live guest has sent all of it', () => {
  const s = new GuestStreams();
  s.sent(view(syn()));
  const covered: number[] = [];
  const rec = recorded([0, 1000, 2000, 3000], covered);
  assert.equal(rec.match(s, seg(0, 500)), 'accepted');
  assert.deepEqual(covered, []);
  assert.equal(rec.match(s, seg(500, 2000)), 'accepted', 'PSH where the recording had none: timing, not compared');
  assert.deepEqual(covered, [0, 1]);
  // The engine stops offering a covered segment; so does this test.
  rec.splice(0, 2);
  assert.equal(rec.match(s, seg(0, 1000)), 'retransmission', 'all of it sent before');
  assert.equal(rec.match(s, seg(2500, 3000)), 'no', 'a gap: bytes 2000..2500 never sent');
  const other = body.slice();
  other[2100] = other[2100]! ^ 1;
  assert.equal(rec.match(s, seg(2000, 3000, TCP_ACK, other)), 'no', 'one byte differs');
  assert.equal(rec.match(s, seg(2000, 3500)), 'no', 'bytes the recorded guest never sent');
  assert.equal(rec.match(s, seg(2000, 3000)), 'accepted');
  assert.deepEqual(covered, [0, 1, 2]);
});

test('FIN: early (the recording had more data) is refused; at the end it covers the recorded FIN; covers() counts it as one', () => {
  const s = new GuestStreams();
  s.sent(view(syn()));
  const covered: number[] = [];
  const rec = recorded([0, 1000, 2000], covered, true);
  assert.equal(rec.match(s, seg(0, 1000, TCP_ACK | TCP_FIN)), 'no');
  assert.equal(rec.match(s, seg(0, 2000, TCP_ACK | TCP_FIN)), 'accepted', 'data and FIN in one segment');
  assert.deepEqual(covered, [0, 1]);
  const ackOf = (n: number): PacketView => view(buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: 40000, seq: 5001, ack: (ISN + 1 + n) >>> 0, tcpFlags: TCP_ACK }));
  assert.ok(s.covers(ackOf(2000)));
  assert.ok(s.covers(ackOf(2001)), 'the FIN was sent');
  assert.ok(!s.covers(ackOf(2002)));
});

test('property: any two cuts of one byte stream match; every recorded segment is covered at the end', () => {
  const cuts = fc.uniqueArray(fc.integer({ min: 1, max: 5999 }), { maxLength: 12 }).map((xs) => [0, ...xs.sort((a, b) => a - b), 6000]);
  fc.assert(
    fc.property(cuts, cuts, (rc, lc) => {
      const s = new GuestStreams();
      s.sent(view(syn()));
      const covered: number[] = [];
      const rec = recorded(rc, covered);
      for (let i = 0; i + 1 < lc.length; i++) assert.equal(rec.match(s, seg(lc[i]!, lc[i + 1]!)), 'accepted');
      assert.deepEqual([...new Set(covered)].sort((a, b) => a - b), rec.ids);
    }),
  );
});

test('engine: an upload cut differently than recorded replays; each world ACK goes in once the live guest sent what it acknowledges', () => {
  const wack = (n: number, flags = TCP_ACK): Uint8Array => buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: 40000, seq: 5001, ack: (ISN + 1 + n) >>> 0, tcpFlags: flags });
  const frames: [boolean, Uint8Array][] = [
    [true, syn()],
    [false, buildFrame({ ...W, proto: 'tcp', srcPort: 80, dstPort: 40000, seq: 5000, ack: (ISN + 1) >>> 0, tcpFlags: TCP_SYN | TCP_ACK })],
    [true, seg(0, 1000)],
    [true, seg(1000, 2000)],
    [false, wack(2000)],
    [true, seg(2000, 3000)],
    [true, seg(3000, 4000)],
    [false, wack(4000)],
  ];
  const recs: LoggedFrame[] = frames.map(([fromGuest, frame], i) => ({ seq: i, fromGuest, tsNs: i * 1e6, frame }));
  const injected: Uint8Array[] = [];
  const divs: ReplayDivergence[] = [];
  let finished = false;
  const e = new ReplayEngine(recs, { pacing: 'causal', speed: 1, timeoutMs: 1000, continueOnDivergence: false, window: 8 }, { inject: (f) => injected.push(f), divergence: (d) => divs.push(d), finished: () => (finished = true) });
  e.start(0);
  e.guestFrame(syn(41000), 1);
  assert.equal(injected.length, 1);
  // The live guest writes 1500 bytes, then 1500, then 1000.
  e.guestFrame(seg(0, 1500, TCP_ACK | TCP_PSH, body, 41000), 2);
  assert.equal(injected.length, 1, 'the ACK of 2000 waits');
  e.guestFrame(seg(1500, 3000, TCP_ACK | TCP_PSH, body, 41000), 3);
  assert.equal(injected.length, 2, 'now it goes');
  assert.equal(view(injected[1]!).dstPort, 41000);
  e.guestFrame(seg(3000, 4000, TCP_ACK | TCP_PSH, body, 41000), 4);
  assert.equal(injected.length, 3);
  assert.deepEqual(divs, []);
  assert.ok(finished);
  assert.equal(e.stats.streamMatched, 2, 'the last segment was cut as recorded and matched as a frame');
});
