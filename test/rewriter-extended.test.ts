// The rewriter's extended mode (beyond QEMU's filter-rewriter): connections
// the guest opens, IPv6, VLAN tags, SACK blocks, timestamps with ts-offset=on,
// teardown by FINs or RST, an LRU-bounded table; and the property of the issue:
// any stream of secondary segments rewritten and then un-rewritten with the
// inverse offsets is byte-identical and every emitted checksum verifies, IPv4
// and IPv6.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { u32be, w32be } from '../src/codec/bytes.ts';
import { updateChecksum32, verifyL4Checksum } from '../src/packet/checksum.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { FILTER_PASS, type FilterContext, type FilterDirection } from '../src/engine/filters/filter.ts';
import { RewriterFilter } from '../src/engine/filters/rewriter-filter.ts';
import { buildFrame } from './helpers/build-packet.ts';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;
const PSH = 0x08;

const ctx: FilterContext = { passOn: () => assert.fail('never consumed'), requestCheckpoint: () => {}, holdGuest: () => {}, holdNetwork: () => {}, emit: () => {}, fatal: (e) => assert.fail(e) };

function rig(o: { tsOffset?: boolean; max?: number } = {}): { f: RewriterFilter; send: (dir: FilterDirection, frame: Uint8Array) => PacketView } {
  const f = new RewriterFilter({ id: 'rw', queue: 'all', status: true, vnetHdr: false, mode: 'extended', tsOffset: o.tsOffset ?? false }, ctx, o.max);
  return {
    f,
    send: (dir, frame) => {
      assert.equal(f.receive(dir, frame, 0), FILTER_PASS);
      const v = new PacketView().decode(frame);
      assert.equal(verifyL4Checksum(v), true, 'every emitted checksum verifies');
      return v;
    },
  };
}

type Family = { ip: 4 | 6; client: string; guest: string; vlans?: number[] };
const V4: Family = { ip: 4, client: '192.0.2.9', guest: '10.0.2.15' };
const V6: Family = { ip: 6, client: '2001:db8::9', guest: '2001:db8::15' };
const TAGGED: Family = { ...V4, vlans: [100] };

/** A segment between the client (port 40000) and the guest (port 80); `fromClient` goes toward the guest (tx). */
function seg(fam: Family, fromClient: boolean, flags: number, seq: number, ack: number, o: { payload?: Uint8Array | string; options?: number[] } = {}): Uint8Array {
  return buildFrame({
    ip: fam.ip,
    ...(fam.vlans !== undefined ? { vlans: fam.vlans } : {}),
    src: fromClient ? '52:55:0a:00:02:02' : '52:54:00:12:34:56',
    dst: fromClient ? '52:54:00:12:34:56' : '52:55:0a:00:02:02',
    ipSrc: fromClient ? fam.client : fam.guest,
    ipDst: fromClient ? fam.guest : fam.client,
    proto: 'tcp',
    srcPort: fromClient ? 40000 : 80,
    dstPort: fromClient ? 80 : 40000,
    seq: seq >>> 0,
    ack: ack >>> 0,
    tcpFlags: flags,
    payload: o.payload ?? '',
    ...(o.options !== undefined ? { tcpOptions: o.options } : {}),
  });
}

const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const sackOpt = (blocks: [number, number][]): number[] => [1, 1, 5, 2 + 8 * blocks.length, ...blocks.flatMap(([l, r]) => [...be32(l), ...be32(r)])];
const tsOpt = (val: number, ecr: number): number[] => [1, 1, 8, 10, ...be32(val), ...be32(ecr)];

for (const fam of [V4, V6, TAGGED]) {
  const name = fam.ip === 6 ? 'IPv6' : fam.vlans !== undefined ? '802.1Q-tagged IPv4' : 'IPv4';

  test(`${name}: a connection the client opens: offset from the guest's SYN/ACK and the client's first ACK, ACK and SEQ shifted`, () => {
    const r = rig();
    r.send('tx', seg(fam, true, SYN, 1000, 0));
    r.send('rx', seg(fam, false, SYN | ACK, 7000, 1001)); // secondary ISN 7000
    const first = r.send('tx', seg(fam, true, ACK, 1001, 5001)); // primary ISN 5000: offset 2000
    assert.equal(first.tcpAck, 7001);
    assert.equal(r.send('tx', seg(fam, true, ACK | PSH, 1001, 5001, { payload: 'GET /' })).tcpAck, 7001);
    assert.equal(r.send('rx', seg(fam, false, ACK | PSH, 7001, 1006, { payload: 'HTTP/1.1 200' })).tcpSeq, 5001);
    assert.deepEqual(r.f.connectionOf(seg(fam, true, ACK, 0, 0)), { state: 3, offset: 2000 });
  });

  test(`${name}: a connection the guest opens (QEMU leaves it unrewritten): offset from the network's SYN/ACK`, () => {
    const r = rig();
    r.send('rx', seg(fam, false, SYN, 9000, 0)); // the secondary's ISN 9000
    const synAck = r.send('tx', seg(fam, true, SYN | ACK, 300, 4001)); // acknowledges the primary's ISN 4000
    assert.equal(synAck.tcpAck, 9001, 'the SYN/ACK itself is shifted for the secondary');
    assert.equal(r.send('rx', seg(fam, false, ACK, 9001, 301)).tcpSeq, 4001);
    assert.equal(r.send('tx', seg(fam, true, ACK, 301, 4001)).tcpAck, 9001);
    assert.equal(r.f.counters.guestOpened, 1);
  });
}

test('SACK blocks from the network are shifted with the ACK', () => {
  const r = rig();
  r.send('tx', seg(V4, true, SYN, 1000, 0));
  r.send('rx', seg(V4, false, SYN | ACK, 7000, 1001));
  r.send('tx', seg(V4, true, ACK, 1001, 5001));
  const v = r.send('tx', seg(V4, true, ACK, 1001, 5001, { options: sackOpt([[6001, 7001], [8001, 9001]]) }));
  assert.equal(v.tcpSackBlocks, 2);
  const words = [0, 1, 2, 3].map((i) => new DataView(v.buf.buffer, v.buf.byteOffset).getUint32(v.tcpSackOffset + 4 * i));
  assert.deepEqual(words, [8001, 9001, 10001, 11001]);
  assert.equal(r.f.counters.sackRewritten, 1);
});

test('ts-offset=on: the secondary clock offset is learned at the handshake; TSecr toward the guest and TSval from it are shifted; off leaves them', () => {
  for (const on of [true, false]) {
    const r = rig({ tsOffset: on });
    r.send('tx', seg(V4, true, SYN, 1000, 0, { options: tsOpt(111, 0) }));
    r.send('rx', seg(V4, false, SYN | ACK, 7000, 1001, { options: tsOpt(90_000, 111) })); // secondary TSval
    const a = r.send('tx', seg(V4, true, ACK, 1001, 5001, { options: tsOpt(112, 50_000) })); // echoes the primary's TSval 50 000
    assert.equal(a.tcpTsEcr, on ? 90_000 : 50_000);
    const g = r.send('rx', seg(V4, false, ACK | PSH, 7001, 1001, { payload: 'x', options: tsOpt(90_010, 112) }));
    assert.equal(g.tcpTsVal, on ? 50_010 : 90_010, 'the primary clock, as the comparator sees it');
    assert.equal(r.f.counters.tsRewritten > 0, on);
  }
});

test('teardown: both FINs acknowledged ends the connection after the final ACK is shifted; a RST ends it at once', () => {
  const r = rig();
  r.send('tx', seg(V4, true, SYN, 1000, 0));
  r.send('rx', seg(V4, false, SYN | ACK, 7000, 1001));
  r.send('tx', seg(V4, true, ACK, 1001, 5001));
  r.send('tx', seg(V4, true, FIN | ACK, 1001, 5001));
  r.send('rx', seg(V4, false, FIN | ACK, 7001, 1002));
  assert.equal(r.f.connections, 1);
  const last = r.send('tx', seg(V4, true, ACK, 1002, 5002));
  assert.equal(last.tcpAck, 7002, 'the final ACK still shifted');
  assert.equal(r.f.connections, 0);
  r.send('tx', seg(V4, true, SYN, 2000, 0));
  assert.equal(r.f.connections, 1);
  r.send('rx', seg(V4, false, RST | ACK, 0, 2001));
  assert.equal(r.f.connections, 0);
  assert.equal(r.f.counters.connectionsReset, 1);
});

test('the table is bounded by evicting the least recently used connection, counted, not by clearing it', () => {
  const r = rig({ max: 3 });
  const open = (port: number): Uint8Array => buildFrame({ proto: 'tcp', srcPort: port, dstPort: 80, tcpFlags: SYN });
  for (const p of [1, 2, 3]) r.f.receive('tx', open(p), 0);
  r.f.receive('tx', buildFrame({ proto: 'tcp', srcPort: 1, dstPort: 80, tcpFlags: ACK }), 0); // 1 used again: 2 is now the oldest
  r.f.receive('tx', open(4), 0);
  assert.equal(r.f.connections, 3);
  assert.equal(r.f.counters.evicted, 1);
  assert.equal(r.f.counters.tableResets, 0);
  assert.equal(r.f.connectionOf(open(2)), null, 'the least recently used went');
  for (const p of [1, 3, 4]) assert.notEqual(r.f.connectionOf(open(p)), null);
});

test('a checkpoint zeroes the offsets; with none left non-zero, failover leaves untracked connections alone', () => {
  const r = rig({ tsOffset: true });
  r.send('tx', seg(V4, true, SYN, 1000, 0));
  r.send('rx', seg(V4, false, SYN | ACK, 7000, 1001));
  r.send('tx', seg(V4, true, ACK, 1001, 5001));
  r.f.colo('failover');
  assert.equal(r.f.failoverMode, false, 'an offset is still needed');
  r.f.colo('checkpoint');
  assert.equal(r.send('tx', seg(V4, true, ACK, 1001, 5001)).tcpAck, 5001);
  r.f.colo('failover');
  assert.equal(r.f.failoverMode, true);
});

test('property: secondary segments rewritten, then un-rewritten with the inverse offsets, are byte-identical; every checksum verifies (IPv4, IPv6, tagged)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(V4, V6, TAGGED),
      fc.boolean(),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.record({ fromClient: fc.boolean(), seq: fc.integer({ min: 0, max: 0xffffffff }), ack: fc.integer({ min: 0, max: 0xffffffff }), sack: fc.integer({ min: 0, max: 0xffffffff }), payload: fc.string({ maxLength: 40 }) }), { maxLength: 25 }),
      (fam, guestOpens, clientIsn, primaryIsn, secondaryIsn, segs) => {
        const r = rig();
        if (guestOpens) {
          r.send('rx', seg(fam, false, SYN, secondaryIsn, 0));
          r.send('tx', seg(fam, true, SYN | ACK, clientIsn, primaryIsn + 1));
        } else {
          r.send('tx', seg(fam, true, SYN, clientIsn, 0));
          r.send('rx', seg(fam, false, SYN | ACK, secondaryIsn, clientIsn + 1));
          r.send('tx', seg(fam, true, ACK, clientIsn + 1, primaryIsn + 1));
        }
        const offset = (secondaryIsn - primaryIsn) >>> 0;
        for (const s of segs) {
          const sackEdges: [number, number][] = [[s.sack, (s.sack + 100) >>> 0]];
          const original = seg(fam, s.fromClient, ACK | PSH, s.seq, s.ack, { payload: s.payload, ...(s.fromClient ? { options: sackOpt(sackEdges) } : {}) });
          const out = r.send(s.fromClient ? 'tx' : 'rx', Uint8Array.from(original));
          // Un-rewrite with the inverse offset, the checksum updated the same way: the original, byte for byte.
          const back = Uint8Array.from(out.buf);
          const v = new PacketView().decode(back);
          const put = (at: number, value: number): void => {
            const old = u32be(back, at);
            w32be(back, at, value >>> 0);
            updateChecksum32(back, v.l4Offset + 16, old, value >>> 0);
          };
          if (s.fromClient) {
            put(v.l4Offset + 8, v.tcpAck - offset);
            put(v.tcpSackOffset, s.sack);
            put(v.tcpSackOffset + 4, s.sack + 100);
          } else put(v.l4Offset + 4, v.tcpSeq + offset);
          assert.deepEqual(back, original);
        }
      },
    ),
    { numRuns: 150 },
  );
});
