// The rewriter (QEMU's filter-rewriter, mode qemu, its bugs fixed) on
// hand-computed packets for every rule of colo-proxy.md §9, and a property:
// any stream of segments rewritten and then un-rewritten with the inverse
// offset is byte-identical, and every emitted checksum verifies.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { w32be } from '../src/codec/bytes.ts';
import { fillIpv4HeaderChecksum, fillL4Checksum, updateChecksum32, verifyL4Checksum } from '../src/packet/checksum.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { FILTER_PASS, type FilterContext, type FilterDirection } from '../src/engine/filters/filter.ts';
import { RewriterFilter, TcpState } from '../src/engine/filters/rewriter-filter.ts';
import { buildFrame, clientGuestSegment } from './helpers/build-packet.ts';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const PSH = 0x08;

/** Client 192.0.2.9:40000 ↔ guest 10.0.2.15:80. `fromClient` frames go toward the guest (tx). */
const seg = (fromClient: boolean, flags: number, seq: number, ack: number, payload = ''): Uint8Array => clientGuestSegment(fromClient, flags, seq, ack, payload);

function rig(): { f: RewriterFilter; events: string[]; send: (dir: FilterDirection, frame: Uint8Array) => Uint8Array } {
  const events: string[] = [];
  const ctx: FilterContext = {
    passOn: () => assert.fail('the rewriter passes frames, it never consumes them'),
    requestCheckpoint: () => {},
    holdGuest: () => {},
    holdNetwork: () => {},
    emit: (e) => events.push(e),
    fatal: (e) => assert.fail(e),
  };
  const f = new RewriterFilter({ id: 'rw', queue: 'all', status: true, vnetHdr: false, mode: 'qemu', tsOffset: false }, ctx);
  /** Runs one frame; returns what leaves the filter: the frame itself, rewritten in place or not. */
  const send = (dir: FilterDirection, frame: Uint8Array): Uint8Array => {
    assert.equal(f.receive(dir, frame, 0), FILTER_PASS, 'the rewriter never holds a frame');
    return frame;
  };
  return { f, events, send };
}

const view = (b: Uint8Array): PacketView => new PacketView().decode(b);

/** The client's handshake with the primary (ISN 3000) while the secondary chose ISN 5000: offset 2000. */
function established(r: ReturnType<typeof rig>): void {
  r.send('tx', seg(true, SYN, 1000, 0));
  // The secondary's own SYN/ACK (compare drops it; the rewriter learns its ISN from it).
  assert.equal(view(r.send('rx', seg(false, SYN | ACK, 5000, 1001))).tcpSeq, 5000, 'SYN/ACK is never rewritten');
  // The client acknowledges the primary's ISN: offset = 5000 − 3000.
  const a = view(r.send('tx', seg(true, ACK, 1001, 3001)));
  assert.equal(a.tcpAck, 5001);
  assert.equal(verifyL4Checksum(a), true);
}

test('a client-opened connection: offset learned from the secondary SYN/ACK and the first ACK; ACKs toward the guest +offset, SEQs from it −offset, checksums valid', () => {
  const r = rig();
  established(r);
  const toGuest = seg(true, ACK | PSH, 1001, 3001, 'GET / HTTP/1.0\r\n\r\n');
  const t = r.send('tx', toGuest);
  assert.equal(view(t).tcpAck, 5001, 'rewritten in place');
  assert.equal(verifyL4Checksum(view(t)), true);
  const fromGuest = r.send('rx', seg(false, ACK | PSH, 5001, 1019, 'HTTP/1.0 200 OK\r\n'));
  const v = view(fromGuest);
  assert.equal(v.tcpSeq, 3001);
  assert.equal(v.tcpAck, 1019, 'the guest ACK is the client\'s space already');
  assert.equal(verifyL4Checksum(v), true);
  assert.deepEqual(r.f.connectionOf(toGuest), { state: TcpState.Established, offset: 2000 });
  assert.equal(r.f.counters.ackRewritten, 2);
  assert.equal(r.f.counters.seqRewritten, 1);
});

test('checkpoint zeroes every offset: frames pass untouched afterwards, the state is kept', () => {
  const r = rig();
  established(r);
  r.f.colo('checkpoint');
  const a = seg(true, ACK, 1001, 3001);
  assert.equal(r.send('tx', a), a);
  const b = seg(false, ACK, 3001, 1001);
  assert.equal(r.send('rx', b), b);
  assert.deepEqual(r.f.connectionOf(a), { state: TcpState.Established, offset: 0 });
});

test('passive close deletes the connection with an offset in place (QEMU compares two sequence spaces and never does: its bug 1)', () => {
  const r = rig();
  established(r);
  r.send('tx', seg(true, FIN | ACK, 1001, 3001)); // CLOSE_WAIT
  const fin = view(r.send('rx', seg(false, FIN | ACK, 5010, 1002)));
  assert.equal(fin.tcpSeq, 3010);
  const last = view(r.send('tx', seg(true, ACK, 1002, 3011)));
  assert.equal(last.tcpAck, 5011);
  assert.equal(r.f.connections, 0, 'the connection is gone');
  assert.equal(r.f.counters.connectionsClosed, 1);
});

test('active close with a bare FIN from the guest: its final ACK is still rewritten, then the connection goes (QEMU deletes it one frame early)', () => {
  const r = rig();
  established(r);
  r.send('rx', seg(false, FIN, 5001, 1001)); // bare FIN: FIN_WAIT_1
  r.send('tx', seg(true, FIN | ACK, 1001, 3002));
  assert.equal(r.f.connections, 1);
  const finalAck = view(r.send('rx', seg(false, ACK, 5002, 1002)));
  assert.equal(finalAck.tcpSeq, 3002);
  assert.equal(r.f.connections, 0);
});

test('a connection the guest opens is tracked but never rewritten (QEMU learns no offset for it)', () => {
  const r = rig();
  const syn = seg(false, SYN, 7000, 0);
  assert.equal(r.send('rx', syn), syn);
  assert.equal(r.f.connectionOf(syn)?.state, TcpState.SynSent);
  const sa = seg(true, SYN | ACK, 9000, 7001);
  assert.equal(r.send('tx', sa), sa);
  assert.equal(r.f.connectionOf(syn)?.state, TcpState.Established);
  const d = seg(false, ACK | PSH, 7001, 9001, 'x');
  assert.equal(r.send('rx', d), d);
  assert.equal(r.f.counters.seqRewritten + r.f.counters.ackRewritten, 0);
});

test('not rewritten: UDP, ARP, IPv6, 802.1Q; counted', () => {
  const r = rig();
  const frames = [
    buildFrame({ proto: 'udp' }),
    buildFrame({ ip: 6, proto: 'tcp', tcpFlags: ACK }),
    buildFrame({ vlans: [5], proto: 'tcp', tcpFlags: ACK }),
  ];
  for (const f of frames) assert.equal(r.f.receive('tx', f, 0), FILTER_PASS);
  assert.equal(r.f.counters.passedOther, 3);
  assert.equal(r.f.counters.tcp, 0);
});

test('IP options: the rewritten TCP checksum is right and the flags byte untouched (QEMU assumes 20 bytes of IP header: its bug 3)', () => {
  const r = rig();
  established(r);
  // The same client segment with 4 bytes of IP options (NOPs): IHL 6.
  const plain = seg(true, ACK | PSH, 1001, 3001, 'data');
  const withOpts = new Uint8Array(plain.length + 4);
  withOpts.set(plain.subarray(0, 34));
  withOpts.set([1, 1, 1, 1], 34);
  withOpts.set(plain.subarray(34), 38);
  withOpts[14] = 0x46;
  const total = ((plain[16]! << 8) | plain[17]!) + 4;
  withOpts[16] = total >> 8;
  withOpts[17] = total & 0xff;
  const v = view(withOpts);
  fillIpv4HeaderChecksum(v);
  fillL4Checksum(v);
  assert.equal(verifyL4Checksum(view(withOpts)), true);
  const out = view(r.send('tx', withOpts));
  assert.equal(out.ipHeaderLen, 24);
  assert.equal(out.tcpAck, 5001);
  assert.equal(out.tcpFlags, ACK | PSH);
  assert.equal(verifyL4Checksum(out), true);
});

test('failover: with no offset left, connections not tracked before pass untouched; with one, rewriting goes on for all', () => {
  const a = rig();
  established(a);
  a.f.colo('failover');
  assert.equal(a.f.failoverMode, false, 'an offset is still needed');
  a.f.colo('checkpoint');
  a.f.colo('failover');
  assert.equal(a.f.failoverMode, true);
  const other = buildFrame({ ipSrc: '192.0.2.77', ipDst: '10.0.2.15', proto: 'tcp', srcPort: 1234, dstPort: 22, tcpFlags: SYN, seq: 1 });
  assert.equal(a.send('tx', other), other);
  assert.equal(a.f.counters.passedFailover, 1);
  assert.equal(a.f.connectionOf(other), null);
});

test('past its bound the table is cleared whole, as QEMU does, and that is counted and said', () => {
  const r = rig();
  const f = new RewriterFilter({ id: 'small', queue: 'all', status: true, vnetHdr: false, mode: 'qemu', tsOffset: false }, { passOn: () => {}, requestCheckpoint: () => {}, holdGuest: () => {}, holdNetwork: () => {}, emit: (e) => r.events.push(e), fatal: () => {} }, 4);
  for (let p = 0; p < 5; p++) f.receive('tx', buildFrame({ proto: 'tcp', srcPort: 5000 + p, dstPort: 80, tcpFlags: SYN }), 0);
  assert.equal(f.counters.tableResets, 1);
  assert.equal(f.connections, 1);
  assert.deepEqual(r.events, ['REWRITER_TABLE_RESET']);
});

test('property: segments rewritten, then un-rewritten with the inverse offset, are byte-identical, and every emitted checksum verifies', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.record({ fromClient: fc.boolean(), seq: fc.integer({ min: 0, max: 0xffffffff }), ack: fc.integer({ min: 0, max: 0xffffffff }), psh: fc.boolean(), payload: fc.string({ maxLength: 40 }) }), { maxLength: 30 }),
      (clientIsn, primaryIsn, secondaryIsn, segs) => {
        const r = rig();
        r.send('tx', seg(true, SYN, clientIsn, 0));
        r.send('rx', seg(false, SYN | ACK, secondaryIsn, (clientIsn + 1) >>> 0));
        r.send('tx', seg(true, ACK, (clientIsn + 1) >>> 0, (primaryIsn + 1) >>> 0));
        const offset = (secondaryIsn - primaryIsn) >>> 0;
        for (const s of segs) {
          const original = seg(s.fromClient, ACK | (s.psh ? PSH : 0), s.seq, s.ack, s.payload);
          const out = r.send(s.fromClient ? 'tx' : 'rx', Uint8Array.from(original));
          const v = view(out);
          assert.equal(verifyL4Checksum(v), true);
          if (offset === 0) {
            assert.deepEqual(out, original);
            continue;
          }
          // Undo: the client's ACK −offset, the guest's SEQ +offset, checksum recomputed.
          const back = Uint8Array.from(out);
          const field = v.l4Offset + (s.fromClient ? 8 : 4);
          w32be(back, field, s.fromClient ? (v.tcpAck - offset) >>> 0 : (v.tcpSeq + offset) >>> 0);
          fillL4Checksum(view(back));
          assert.deepEqual(back, original);
        }
      },
    ),
  );
});

test('property: updateChecksum32 (RFC 1624) after a 32-bit change equals a full recompute, and a wrong checksum stays wrong by the same amount', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.string({ maxLength: 60 }), fc.boolean(), (seq, ack, newAck, payload, corrupt) => {
      const f = seg(true, ACK, seq, ack, payload);
      const v = view(f);
      if (corrupt) f[v.l4Offset + 16] = f[v.l4Offset + 16]! ^ 0x5a;
      w32be(f, v.l4Offset + 8, newAck);
      updateChecksum32(f, v.l4Offset + 16, ack, newAck);
      assert.equal(verifyL4Checksum(view(f)), !corrupt);
      if (!corrupt) {
        const full = Uint8Array.from(f);
        fillL4Checksum(view(full));
        const a = (f[v.l4Offset + 16]! << 8) | f[v.l4Offset + 17]!;
        const b = (full[v.l4Offset + 16]! << 8) | full[v.l4Offset + 17]!;
        // 0x0000 and 0xffff are the same one's-complement value.
        assert.ok(a === b || (a | b) === 0xffff && (a & b) === 0, `${a} vs ${b}`);
      }
    }),
  );
});

test('a segment that arrives with a wrong checksum keeps a wrong one (QEMU recomputes it from scratch and so launders the corruption)', () => {
  const r = rig();
  established(r);
  const f = seg(true, ACK | PSH, 1001, 3001, 'payload');
  f[f.length - 1] = f[f.length - 1]! ^ 0xff; // corrupted on the way
  assert.equal(verifyL4Checksum(view(f)), false);
  const out = view(r.send('tx', f));
  assert.equal(out.tcpAck, 5001);
  assert.equal(verifyL4Checksum(out), false);
});
