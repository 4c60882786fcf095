// Internet checksum (RFC 1071) with the IPv4 (RFC 9293 §3.1) and IPv6
// (RFC 8200 §8.1) pseudo-headers, for verifying and recomputing L3/L4 sums.

import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, L3_IPV4, L3_IPV6, type PacketView } from './packet-view.ts';

/** One's-complement sum of [start, end) added to `sum` (not folded). */
export function sumBytes(b: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  // Add 16-bit words; the accumulator stays far below 2^53 for any frame size.
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  return sum;
}

/** Folds a sum to 16 bits and complements it. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function internetChecksum(b: Uint8Array, start = 0, end = b.length): number {
  return finishChecksum(sumBytes(b, start, end));
}

/** Pseudo-header sum for the packet's L4 segment of `l4Length` bytes. */
export function pseudoHeaderSum(v: PacketView, proto: number, l4Length: number): number {
  const b = v.buf;
  if (v.l3 === L3_IPV4) {
    return sumBytes(b, v.ipSrcOffset, v.ipSrcOffset + 8) + proto + l4Length;
  }
  // IPv6: src, dst, 32-bit length, 24 zero bits, next header.
  return sumBytes(b, v.ipSrcOffset, v.ipSrcOffset + 32) + Math.floor(l4Length / 0x10000) + (l4Length & 0xffff) + proto;
}

/** True when the IPv4 header checksum verifies (IPv6 has none: true). */
export function verifyIpv4HeaderChecksum(v: PacketView): boolean {
  if (v.l3 !== L3_IPV4) return true;
  return internetChecksum(v.buf, v.l3Offset, v.l3Offset + v.ipHeaderLen) === 0;
}

/** Recomputes the IPv4 header checksum in place. */
export function fillIpv4HeaderChecksum(v: PacketView): void {
  if (v.l3 !== L3_IPV4) return;
  const b = v.buf;
  const o = v.l3Offset + 10;
  b[o] = 0;
  b[o + 1] = 0;
  const c = internetChecksum(b, v.l3Offset, v.l3Offset + v.ipHeaderLen);
  b[o] = c >>> 8;
  b[o + 1] = c & 0xff;
}

/** Offset of the L4 checksum field, or -1 for protocols without one we know. */
function l4ChecksumOffset(v: PacketView): number {
  if (v.l4Offset < 0) return -1;
  if (v.ipProto === IPPROTO_TCP) return v.l4Offset + 16;
  if (v.ipProto === IPPROTO_UDP) return v.l4Offset + 6;
  return v.l4Offset + 2; // ICMP, ICMPv6
}

function l4Sum(v: PacketView): number {
  const len = v.ipEnd - v.l4Offset;
  const sum = sumBytes(v.buf, v.l4Offset, v.ipEnd);
  // ICMPv4 has no pseudo-header; ICMPv6, TCP and UDP do.
  return v.ipProto === IPPROTO_ICMP ? sum : sum + pseudoHeaderSum(v, v.ipProto, len);
}

/**
 * Verifies the TCP/UDP/ICMP/ICMPv6 checksum over the whole datagram. Returns
 * null when it cannot be checked (truncated capture, fragment, no L4, or a
 * UDP/IPv4 zero checksum that means "none").
 */
export function verifyL4Checksum(v: PacketView): boolean | null {
  const o = l4ChecksumOffset(v);
  if (o < 0 || v.truncated || v.ipMf || v.ipFragOffset !== 0) return null;
  if (v.l3 !== L3_IPV4 && v.l3 !== L3_IPV6) return null;
  if (o + 2 > v.ipEnd) return null;
  if (v.ipProto === IPPROTO_UDP && v.l3 === L3_IPV4 && v.l4Checksum === 0) return null;
  return finishChecksum(l4Sum(v)) === 0;
}

/** Recomputes the L4 checksum in place (after a rewrite of ports, seq, ack …). */
export function fillL4Checksum(v: PacketView): boolean {
  const o = l4ChecksumOffset(v);
  if (o < 0 || o + 2 > v.ipEnd || (v.l3 !== L3_IPV4 && v.l3 !== L3_IPV6)) return false;
  const b = v.buf;
  b[o] = 0;
  b[o + 1] = 0;
  let c = finishChecksum(l4Sum(v));
  // UDP transmits a computed 0 as 0xffff (RFC 768), since 0 means "no checksum".
  if (c === 0 && v.ipProto === IPPROTO_UDP) c = 0xffff;
  b[o] = c >>> 8;
  b[o + 1] = c & 0xff;
  v.l4Checksum = c;
  return true;
}

/**
 * Updates a 16-bit one's-complement checksum at `csumOffset` in place after the
 * 32-bit field it covers changed from `oldValue` to `newValue` (RFC 1624 eqn 3,
 * one term per 16-bit word): O(1) instead of a sum over the whole segment, and
 * a checksum that was wrong before stays wrong by the same amount.
 */
export function updateChecksum32(b: Uint8Array, csumOffset: number, oldValue: number, newValue: number): void {
  const hc = (b[csumOffset]! << 8) | b[csumOffset + 1]!;
  let sum = (~hc & 0xffff) + (~(oldValue >>> 16) & 0xffff) + (newValue >>> 16) + (~oldValue & 0xffff) + (newValue & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  b[csumOffset] = c >>> 8;
  b[csumOffset + 1] = c & 0xff;
}
