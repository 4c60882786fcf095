// Compares a guest frame (already translated into recorded space) with the
// recorded one, ignoring what legitimately differs between two runs of the
// same guest (IP ID and checksum, IPv6 flow label, L4 checksum, TCP timestamp
// values, and the TCP ACK number and window, which report timing), and names
// the first field that really differs: addresses, ports, sequence numbers,
// flags, options, payload.

import { IPPROTO_TCP, IPPROTO_UDP, L3_IPV4, L3_IPV6, type PacketView } from '../../packet/packet-view.ts';

export interface FrameDifference {
  /** Byte offset in the frame of the first difference. */
  readonly offset: number;
  /** Name of the field at that offset ("tcp.dport", "payload", "length" …). */
  readonly field: string;
}

const TCPOPT_TIMESTAMP = 8;

/** Offsets (within the frame) of TCP timestamp option values, or [-1,-1]. */
function tcpTimestampRange(v: PacketView): [number, number] {
  if (v.ipProto !== IPPROTO_TCP || v.l4Offset < 0) return [-1, -1];
  const b = v.buf;
  let i = v.l4Offset + 20;
  const end = v.l4Offset + v.l4HeaderLen;
  while (i < end) {
    const k = b[i]!;
    if (k === 0) break;
    if (k === 1) {
      i++;
      continue;
    }
    const len = b[i + 1] ?? 0;
    if (len < 2) break;
    if (k === TCPOPT_TIMESTAMP && len === 10) return [i + 2, i + 10];
    i += len;
  }
  return [-1, -1];
}

function masked(v: PacketView, o: number, ts: [number, number]): boolean {
  const l3 = v.l3Offset;
  if (v.l3 === L3_IPV4 && o >= l3 && o < l3 + v.ipHeaderLen) {
    const r = o - l3;
    return r === 4 || r === 5 || r === 10 || r === 11; // identification, header checksum
  }
  if (v.l3 === L3_IPV6 && o >= l3 && o < l3 + 40) {
    const r = o - l3;
    return (r === 1 && true) || r === 2 || r === 3; // flow label (low nibble of byte 1 and bytes 2-3)
  }
  if (v.l4Offset >= 0) {
    const r = o - v.l4Offset;
    // ACK number and window report what had arrived and been read by then: timing, not the guest's behaviour.
    if (v.ipProto === IPPROTO_TCP && ((r >= 8 && r < 12) || r === 14 || r === 15 || r === 16 || r === 17)) return true;
    if (v.ipProto === IPPROTO_UDP && (r === 6 || r === 7)) return true;
    // DHCP's elapsed-seconds field (BOOTP offset 8-9, RFC 2131 §2) counts the client's retries: timing.
    if (v.ipProto === IPPROTO_UDP && (v.srcPort === 68 || v.dstPort === 68) && (r === 8 + 8 || r === 8 + 9)) return true;
    if ((v.ipProto === 1 || v.ipProto === 58) && (r === 2 || r === 3)) return true;
  }
  return o >= ts[0] && o < ts[1];
}

export function fieldAt(v: PacketView, o: number): string {
  if (o < v.l2Offset + 6) return 'eth.dst';
  if (o < v.l2Offset + 12) return 'eth.src';
  if (v.l3Offset < 0 || o < v.l3Offset) return 'eth.type';
  if (v.l3 === L3_IPV4 && o < v.l3Offset + v.ipHeaderLen) {
    const r = o - v.l3Offset;
    return r < 2 ? 'ip.tos' : r < 4 ? 'ip.len' : r < 6 ? 'ip.id' : r < 8 ? 'ip.flags' : r === 8 ? 'ip.ttl' : r === 9 ? 'ip.proto' : r < 12 ? 'ip.checksum' : r < 16 ? 'ip.src' : r < 20 ? 'ip.dst' : 'ip.options';
  }
  if (v.l3 === L3_IPV6 && o < v.l3Offset + 40) {
    const r = o - v.l3Offset;
    return r < 4 ? 'ipv6.flow' : r < 6 ? 'ipv6.plen' : r === 6 ? 'ipv6.nxt' : r === 7 ? 'ipv6.hlim' : r < 24 ? 'ipv6.src' : 'ipv6.dst';
  }
  if (v.l3 === 0x0806) return 'arp';
  if (v.l4Offset >= 0 && o < v.l4Offset + v.l4HeaderLen) {
    const r = o - v.l4Offset;
    if (v.ipProto === IPPROTO_TCP) return r < 2 ? 'tcp.sport' : r < 4 ? 'tcp.dport' : r < 8 ? 'tcp.seq' : r < 12 ? 'tcp.ack' : r < 14 ? 'tcp.flags' : r < 16 ? 'tcp.window' : r < 18 ? 'tcp.checksum' : r < 20 ? 'tcp.urgent' : 'tcp.options';
    if (v.ipProto === IPPROTO_UDP) return r < 2 ? 'udp.sport' : r < 4 ? 'udp.dport' : r < 6 ? 'udp.length' : 'udp.checksum';
    return r < 1 ? 'icmp.type' : r < 2 ? 'icmp.code' : r < 4 ? 'icmp.checksum' : r < 6 ? 'icmp.id' : 'icmp.seq';
  }
  if (v.payloadOffset >= 0 && o >= v.payloadOffset) return 'payload';
  return 'frame';
}

/**
 * null when equal after normalization; else where and which field. `live` and
 * `rec` are decoded views. With headersOnly, payload bytes are not compared.
 */
export function frameDifference(live: PacketView, rec: PacketView, headersOnly = false): FrameDifference | null {
  const a = live.buf;
  const b = rec.buf;
  const tsA = tcpTimestampRange(live);
  const n = headersOnly && rec.payloadOffset >= 0 ? Math.min(a.length, b.length, rec.payloadOffset) : Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i] || masked(rec, i, tsA)) continue;
    return { offset: i, field: fieldAt(rec, i) };
  }
  if (a.length !== b.length) return { offset: Math.min(a.length, b.length), field: 'length' };
  return null;
}
