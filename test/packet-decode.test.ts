import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { internetChecksum, verifyIpv4HeaderChecksum, verifyL4Checksum, fillL4Checksum } from '../src/packet/checksum.ts';
import { FlowKey, fillFlowKey } from '../src/packet/flow-key.ts';
import { formatIpv6 } from '../src/packet/format.ts';
import { TCP_ACK, TCP_SYN } from '../src/packet/l4.ts';
import { IPPROTO_TCP, IPPROTO_UDP, L3_ARP, L3_IPV4, L3_IPV6, LINKTYPE_ETHERNET, LINKTYPE_RAW, PacketView } from '../src/packet/packet-view.ts';
import { summarize } from '../src/packet/packet-summary.ts';
import { buildFrame } from './helpers/build-packet.ts';

test('IPv4/UDP: fields, payload, checksums', () => {
  const f = buildFrame({ proto: 'udp', srcPort: 53, dstPort: 40000, payload: 'hello', ttl: 7, ipId: 0x1234 });
  const v = new PacketView().decode(f);
  assert.equal(v.malformed, null);
  assert.equal(v.l3, L3_IPV4);
  assert.equal(v.ipProto, IPPROTO_UDP);
  assert.equal(v.ipTtl, 7);
  assert.equal(v.ipId, 0x1234);
  assert.equal(v.srcPort, 53);
  assert.equal(v.dstPort, 40000);
  assert.equal(v.payloadLength, 5);
  assert.equal(Buffer.from(f.subarray(v.payloadOffset, v.payloadOffset + 5)).toString(), 'hello');
  assert.ok(verifyIpv4HeaderChecksum(v));
  assert.equal(verifyL4Checksum(v), true);
  f[v.payloadOffset] = f[v.payloadOffset]! ^ 1;
  assert.equal(verifyL4Checksum(new PacketView().decode(f)), false);
});

test('TCP options: MSS, window scale, SACK permitted, timestamps, SACK blocks', () => {
  const opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9];
  const f = buildFrame({ proto: 'tcp', tcpFlags: TCP_SYN | TCP_ACK, seq: 0xfffffff0, ack: 42, tcpOptions: opts, payload: 'x' });
  const v = new PacketView().decode(f);
  assert.equal(v.malformed, null);
  assert.equal(v.ipProto, IPPROTO_TCP);
  assert.equal(v.tcpSeq, 0xfffffff0);
  assert.equal(v.tcpAck, 42);
  assert.equal(v.tcpFlags, TCP_SYN | TCP_ACK);
  assert.equal(v.tcpMss, 1460);
  assert.equal(v.tcpWscale, 7);
  assert.ok(v.tcpSackPermitted);
  assert.ok(v.tcpHasTimestamp);
  assert.equal(v.tcpTsVal, 1);
  assert.equal(v.tcpTsEcr, 2);
  assert.equal(v.tcpSackBlocks, 1);
  assert.equal(v.payloadLength, 1);
  assert.equal(verifyL4Checksum(v), true);
});

test('bad TCP option length is reported, header fields kept', () => {
  const f = buildFrame({ proto: 'tcp', tcpOptions: [2, 9, 0, 0] });
  const v = new PacketView().decode(f);
  assert.equal(v.malformed, 'tcp-bad-option');
  assert.equal(v.srcPort, 1234);
});

test('802.1Q and QinQ tags are walked', () => {
  const f = buildFrame({ vlans: [100, 200], proto: 'udp' });
  f[12] = 0x88;
  f[13] = 0xa8; // outer tag as 802.1ad
  const v = new PacketView().decode(f);
  assert.equal(v.vlanCount, 2);
  assert.equal(v.vlanTpid[0], 0x88a8);
  assert.equal(v.vlanTci[0]! & 0xfff, 100);
  assert.equal(v.vlanTci[1]! & 0xfff, 200);
  assert.equal(v.l3, L3_IPV4);
  assert.equal(v.srcPort, 1234);
});

test('IPv6 with extension headers and a fragment header', () => {
  const base = buildFrame({ ip: 6, proto: 'udp', payload: 'abcd' });
  // Insert hop-by-hop (8 bytes) + fragment header (8 bytes, offset 0, M=1) before UDP.
  const ext = [44, 0, 1, 4, 0, 0, 0, 0, /* frag: */ 17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef];
  const f = new Uint8Array(base.length + ext.length);
  f.set(base.subarray(0, 54));
  f.set(ext, 54);
  f.set(base.subarray(54), 54 + ext.length);
  f[14 + 6] = 0; // next header = hop-by-hop
  const plen = (f[18]! << 8) | f[19]!;
  f[18] = (plen + 16) >> 8;
  f[19] = (plen + 16) & 0xff;
  const v = new PacketView().decode(f);
  assert.equal(v.malformed, null);
  assert.equal(v.l3, L3_IPV6);
  assert.equal(v.ip6ExtCount, 2);
  assert.ok(v.ip6HasFragHeader);
  assert.ok(v.ipMf);
  assert.equal(v.ip6FragId, 0xdeadbeef);
  assert.equal(v.ipProto, IPPROTO_UDP);
  assert.equal(v.srcPort, 1234);
  // A later fragment has no L4 header.
  f[54 + 10] = 0x05;
  f[54 + 11] = 0x00;
  const w = new PacketView().decode(f);
  assert.equal(w.ipFragOffset, 0x500);
  assert.equal(w.srcPort, -1);
});

test('IPv4 later fragments have no L4; first fragment does', () => {
  const first = new PacketView().decode(buildFrame({ proto: 'udp', moreFragments: true, payload: 'aaaaaaaa' }));
  assert.ok(first.ipMf);
  assert.equal(first.srcPort, 1234);
  const later = new PacketView().decode(buildFrame({ proto: 'udp', fragOffsetBytes: 16, payload: 'aaaaaaaa' }));
  assert.equal(later.ipFragOffset, 16);
  assert.equal(later.srcPort, -1);
  assert.equal(verifyL4Checksum(later), null);
});

test('ARP request', () => {
  const f = new Uint8Array(42);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
  f.set([10, 0, 2, 15], 28);
  f.set([10, 0, 2, 2], 38);
  const v = new PacketView().decode(f);
  assert.equal(v.l3, L3_ARP);
  assert.equal(v.arpOp, 1);
  const s = summarize(v, 1, '0.000000000', 42);
  assert.equal(s.ipSrc, '10.0.2.15');
  assert.equal(s.ipDst, '10.0.2.2');
});

test('virtio-net header in front of the frame (10, 12, 20 bytes)', () => {
  const eth = buildFrame({ proto: 'tcp' });
  for (const n of [10, 12, 20]) {
    const f = new Uint8Array(n + eth.length);
    f[0] = 1; // NEEDS_CSUM
    f[1] = 1; // GSO_TCPV4
    f[2] = 54; // hdr_len LE
    f[4] = 0xdc;
    f[5] = 0x05; // gso_size 1500
    if (n >= 12) f[10] = 1;
    f.set(eth, n);
    const v = new PacketView().decode(f, LINKTYPE_ETHERNET, n);
    assert.equal(v.malformed, null);
    assert.equal(v.vnetHdrLen, n);
    assert.equal(v.vnetFlags, 1);
    assert.equal(v.vnetGsoType, 1);
    assert.equal(v.vnetHdrLenField, 54);
    assert.equal(v.vnetGsoSize, 1500);
    assert.equal(v.vnetNumBuffers, n >= 12 ? 1 : 0);
    assert.equal(v.l2Offset, n);
    assert.equal(v.srcPort, 1234);
  }
  assert.equal(new PacketView().decode(eth, LINKTYPE_ETHERNET, 24).malformed, 'vnet-header-too-long');
});

test('raw IP link type', () => {
  const eth = buildFrame({ proto: 'udp' });
  const v = new PacketView().decode(eth.subarray(14), LINKTYPE_RAW);
  assert.equal(v.l3, L3_IPV4);
  assert.equal(v.srcPort, 1234);
});

test('lying lengths are reported, never read past the frame', () => {
  const f = buildFrame({ proto: 'tcp', payload: 'abc' });
  const t = f.slice();
  t[16] = 0xff; // total length beyond the frame
  const v = new PacketView().decode(t);
  assert.ok(v.truncated);
  assert.ok(v.ipEnd <= t.length);
  const h = f.slice();
  h[14] = 0x43; // IHL 3
  assert.equal(new PacketView().decode(h).malformed, 'ipv4-bad-header-length');
  const d = f.slice();
  d[14 + 20 + 12] = 0xf0; // TCP data offset 60 > segment
  assert.equal(new PacketView().decode(d).malformed, 'tcp-options-truncated');
});

test('internet checksum: RFC 1071 example and fill/verify round trip', () => {
  // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2 → checksum 220d.
  assert.equal(internetChecksum(Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7)), 0x220d);
  for (const spec of [{ proto: 'tcp' as const }, { proto: 'udp' as const }, { proto: 'icmp' as const }, { ip: 6 as const, proto: 'tcp' as const }, { ip: 6 as const, proto: 'icmp' as const }]) {
    const f = buildFrame({ ...spec, payload: 'odd' });
    const v = new PacketView().decode(f);
    assert.equal(verifyL4Checksum(v), true, JSON.stringify(spec));
    const co = v.l4Offset + (spec.proto === 'tcp' ? 16 : spec.proto === 'udp' ? 6 : 2);
    f[co] = f[co]! ^ 0xff;
    assert.equal(verifyL4Checksum(new PacketView().decode(f)), false);
    fillL4Checksum(v);
    assert.equal(verifyL4Checksum(new PacketView().decode(f)), true);
  }
});

test('flow key: both directions map to one key; reversed flags the direction', () => {
  const a = new PacketView().decode(buildFrame({ proto: 'tcp', ipSrc: '10.0.0.9', ipDst: '10.0.0.1', srcPort: 5555, dstPort: 80 }));
  const b = new PacketView().decode(buildFrame({ proto: 'tcp', ipSrc: '10.0.0.1', ipDst: '10.0.0.9', srcPort: 80, dstPort: 5555 }));
  const ka = new FlowKey();
  const kb = new FlowKey();
  assert.ok(fillFlowKey(a, ka));
  assert.ok(fillFlowKey(b, kb));
  assert.ok(ka.equals(kb));
  assert.notEqual(ka.reversed, kb.reversed);
  assert.equal(ka.toString(), '6 10.0.0.1:80 <-> 10.0.0.9:5555');
  const c = new PacketView().decode(buildFrame({ proto: 'tcp', ipSrc: '10.0.0.9', ipDst: '10.0.0.1', srcPort: 5556, dstPort: 80 }));
  const kc = new FlowKey();
  fillFlowKey(c, kc);
  assert.ok(!ka.equals(kc));
  const e1 = new FlowKey();
  const e2 = new FlowKey();
  fillFlowKey(new PacketView().decode(buildFrame({ proto: 'icmp', icmpId: 7 })), e1);
  fillFlowKey(new PacketView().decode(buildFrame({ proto: 'icmp', icmpId: 8 })), e2);
  assert.ok(!e1.equals(e2), 'echo identifiers separate ping flows');
});

test('IPv6 text form follows RFC 5952 and tshark', () => {
  const cases: [string, number[]][] = [
    ['fd00::1', [0xfd, 0, ...Array(13).fill(0), 1]],
    ['::', Array(16).fill(0)],
    ['::ffff:10.0.0.1', [...Array(10).fill(0), 0xff, 0xff, 10, 0, 0, 1]],
    ['2001:db8:0:1:1:1:1:1', [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]],
    ['2001:db8::1:0:0:1', [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]],
    ['fe80::', [0xfe, 0x80, ...Array(14).fill(0)]],
  ];
  for (const [text, bytes] of cases) assert.equal(formatIpv6(Uint8Array.from(bytes), 0), text);
});

test('property: arbitrary bytes never throw and never read outside the frame', () => {
  const v = new PacketView();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(0, 1, 101, 108, 113, 228, 229, 999), fc.constantFrom(0, 10, 12, 20, 24), (b, lt, vnet) => {
      v.decode(b, lt, vnet);
      for (const o of [v.l3Offset, v.l4Offset, v.payloadOffset]) assert.ok(o <= b.length);
      assert.ok(v.payloadOffset < 0 || v.payloadOffset + v.payloadLength <= b.length);
      assert.ok(v.ipEnd <= b.length);
      summarize(v, 1, '0', b.length);
      verifyL4Checksum(v);
    }),
    { numRuns: 3000 },
  );
});

test('property: mutated valid frames never throw', () => {
  const base = [buildFrame({ proto: 'tcp', tcpOptions: [2, 4, 5, 0xb4], payload: 'data' }), buildFrame({ ip: 6, proto: 'udp', payload: 'x' }), buildFrame({ vlans: [5], proto: 'icmp' })];
  const v = new PacketView();
  fc.assert(
    fc.property(fc.constantFrom(...base), fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 6 }), fc.nat(200), (f, flips, cut) => {
      const m = f.slice(0, Math.max(1, cut));
      for (const [i, x] of flips) if (i < m.length) m[i] = x;
      v.decode(m);
      assert.ok(v.payloadOffset < 0 || v.payloadOffset + v.payloadLength <= m.length);
      summarize(v, 1, '0', m.length);
    }),
    { numRuns: 3000 },
  );
});
