// One queued packet, and the classification of an incoming frame per mode.
//
// qemu mode follows parse_packet_early / fill_connection_key (reference
// colo-proxy.md §7): vnet header ≤ 20 bytes, at least 14 + 4 + vnet bytes, no
// 802.1Q tag at bytes 12-13, IPv4 only; ports from the first 4 bytes of L4 for
// TCP/UDP/DCCP/ESP/SCTP/UDPLITE, the SPI for AH, 0 otherwise (ICMP: per
// address pair). Unlike QEMU we bounds-check the L4 header: a TCP packet too
// short for its header is compared as "other" (whole frame).
//
// extended mode decodes with PacketView: IPv4 and IPv6 (extension headers),
// any number of VLAN tags, ARP; ICMP echo flows are keyed by identifier.

import { flowHash } from '../../packet/flow-key.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN } from '../../packet/link.ts';
import type { Slab } from './packet-store.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, L3_ARP, L3_IPV4, L3_IPV6, type PacketView } from '../../packet/packet-view.ts';

export const KIND_UNSUPPORTED = 0;
export const KIND_TCP = 1;
export const KIND_UDP = 2;
export const KIND_ICMP = 3;
export const KIND_OTHER = 4;
/** extended mode: ARP / neighbour discovery, compared as control traffic. */
export const KIND_ARP = 5;

export type PacketKind = 0 | 1 | 2 | 3 | 4 | 5;

/** QEMU's limit: sizeof(struct virtio_net_hdr_v1_hash). */
export const MAX_VNET_HDR_BYTES = 20;
const IPPROTO_DCCP = 33;
const IPPROTO_ESP = 50;
const IPPROTO_AH = 51;
const IPPROTO_SCTP = 132;
const IPPROTO_UDPLITE = 136;

/**
 * One queued packet. Its bytes are buf[off, off + len): the caller's frame
 * while the packet is being compared on arrival, the store's copy once it
 * waits (packet-store.ts). Offsets below are from the frame's start. Packet
 * objects are pooled: nothing outside the engine keeps one.
 */
export class ComparePacket {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  /** The store slab holding the bytes (null: the caller's frame, or a buffer of its own). */
  slab: Slab | null = null;
  /** The bytes are the caller's frame, valid only during the input call. */
  borrowed = false;
  /** In a connection's queue. */
  waiting = false;
  vnetHdrLen = 0;
  createdMs = 0;
  /** Global arrival number, for release in arrival order. */
  arrival = 0;
  kind: PacketKind = KIND_OTHER;
  /** Where the compared bytes start (UDP/ICMP: L4 header; other: after the vnet header). */
  cmpOffset = 0;
  tcpSeq = 0;
  tcpAck = 0;
  seqEnd = 0;
  /** Bytes from the start of the frame to the end of the TCP header. */
  headerSize = 0;
  payloadSize = 0;
  /** Payload bytes already matched by a partial compare. */
  offset = 0;
  tcpFlags = 0;
  /** For a reassembled datagram: the original fragments, released in its place. */
  parts: Buffer[] | null = null;
  /** Frames this packet stands for (fragments of a reassembled datagram, else 1). */
  frames = 1;
  /** 4, 6, or 0 (ARP). */
  family = 4;
  l3Offset = 0;
  l4Offset = 0;
  ipHeaderLen = 0;

  /** The frame as a view (allocates: for reports and releases, not for comparing). */
  view(): Uint8Array {
    return this.buf.subarray(this.off, this.off + this.len);
  }
}

const EMPTY = new Uint8Array(0);

/** The directional connection key of a classified frame (scratch object, reused). */
export class ConnKey {
  family = 4;
  proto = 0;
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  sport = 0;
  dport = 0;
  hash = 0;
  kind: PacketKind = KIND_UNSUPPORTED;
  /** Offset of the L3 header in the frame. */
  l3Offset = 0;
  l4Offset = 0;
  /** Bytes from frame start to the end of the L2 header as QEMU counts it (ETH_HLEN for compare offsets). */
  ipHeaderLen = 0;

  /**
   * The addresses as 32-bit words (the bytes that count: 4 for IPv4, 16 for
   * IPv6, 6 for ARP), for Connection.matches: comparing numbers on the
   * connection itself, not its address arrays, saves the loads of two more
   * objects per lookup (a connection table walk is memory-bound: perf).
   */
  srcWords = new Int32Array(4);
  dstWords = new Int32Array(4);

  finishHash(): void {
    this.hash = flowHash(this.family, this.proto, this.src, this.dst, this.family === 4 ? 4 : 16, this.sport, this.dport);
    const words = this.family === 6 ? 4 : this.family === 4 ? 1 : 2;
    const bytes = this.family === 6 ? 16 : this.family === 4 ? 4 : 6;
    for (let w = 0; w < 4; w++) {
      this.srcWords[w] = w < words ? word(this.src, w * 4, bytes) : 0;
      this.dstWords[w] = w < words ? word(this.dst, w * 4, bytes) : 0;
    }
  }
}

/** Bytes o..o+3 of a (those below `end`; the rest as 0) as one int32. */
function word(a: Uint8Array, o: number, end: number): number {
  let v = 0;
  for (let i = 0; i < 4; i++) v = (v << 8) | (o + i < end ? a[o + i]! : 0);
  return v | 0;
}

function portsWord(proto: number, b: Uint8Array, l4: number, end: number, key: ConnKey): void {
  key.sport = 0;
  key.dport = 0;
  let o = -1;
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_DCCP || proto === IPPROTO_ESP || proto === IPPROTO_SCTP || proto === IPPROTO_UDPLITE) o = l4;
  else if (proto === IPPROTO_AH) o = l4 + 4;
  if (o >= 0 && o + 4 <= end) {
    key.sport = (b[o]! << 8) | b[o + 1]!;
    key.dport = (b[o + 2]! << 8) | b[o + 3]!;
  }
}

/** qemu-mode classification; fills key. Returns KIND_UNSUPPORTED for what QEMU forwards uncompared. */
export function classifyQemu(frame: Uint8Array, vnetHdrLen: number, key: ConnKey): PacketKind {
  const size = frame.length;
  key.kind = KIND_UNSUPPORTED;
  if (vnetHdrLen > MAX_VNET_HDR_BYTES || size < 14 + 4 + vnetHdrLen) return KIND_UNSUPPORTED;
  const e = vnetHdrLen;
  let type = (frame[e + 12]! << 8) | frame[e + 13]!;
  if (type === ETHERTYPE_VLAN) return KIND_UNSUPPORTED;
  // eth_get_l2_hdr_length: an 802.1ad tag (optionally followed by 802.1Q) lengthens L2.
  let l2 = 14;
  if (type === ETHERTYPE_QINQ) {
    l2 = 18;
    type = (frame[e + 16]! << 8) | frame[e + 17]!;
    if (type === ETHERTYPE_VLAN) {
      if (size < e + 22) return KIND_UNSUPPORTED;
      l2 = 22;
      type = (frame[e + 20]! << 8) | frame[e + 21]!;
    }
  }
  if (type !== ETHERTYPE_IPV4) return KIND_UNSUPPORTED;
  const l3 = e + l2;
  if (l3 >= size) return KIND_UNSUPPORTED;
  const ihl = (frame[l3]! & 0x0f) * 4;
  if (size < l2 + ihl + vnetHdrLen || l3 + 20 > size) return KIND_UNSUPPORTED;
  const proto = frame[l3 + 9]!;
  key.family = 4;
  key.proto = proto;
  // Only the first 4 address bytes of an IPv4 key are hashed or compared (Connection.matches).
  for (let i = 0; i < 4; i++) {
    key.src[i] = frame[l3 + 12 + i]!;
    key.dst[i] = frame[l3 + 16 + i]!;
  }
  key.l3Offset = l3;
  key.l4Offset = l3 + ihl;
  key.ipHeaderLen = ihl;
  portsWord(proto, frame, l3 + ihl, size, key);
  key.finishHash();
  let kind: PacketKind;
  if (proto === IPPROTO_TCP) kind = l3 + ihl + 20 <= size && l3 + ihl + ((frame[l3 + ihl + 12]! >> 4) * 4) <= size ? KIND_TCP : KIND_OTHER;
  else if (proto === IPPROTO_UDP) kind = KIND_UDP;
  else if (proto === IPPROTO_ICMP) kind = KIND_ICMP;
  else kind = KIND_OTHER;
  key.kind = kind;
  return kind;
}

/**
 * extended-mode classification from a decoded view. Fragments are expected
 * to be reassembled before this is called.
 */
export function classifyExtended(v: PacketView, key: ConnKey): PacketKind {
  key.kind = KIND_UNSUPPORTED;
  if (v.vnetHdrLen > MAX_VNET_HDR_BYTES || !v.hasEthernet) return KIND_UNSUPPORTED;
  const b = v.buf;
  key.src.fill(0);
  key.dst.fill(0);
  key.sport = 0;
  key.dport = 0;
  if (v.l3 === L3_ARP || v.etherType === ETHERTYPE_ARP) {
    // Control traffic: one connection per sender hardware address (ARP sender field or Ethernet source).
    key.family = 0;
    key.proto = 0;
    for (let i = 0; i < 6; i++) key.src[i] = b[v.l2Offset + 6 + i]!;
    key.l3Offset = v.l3Offset;
    key.l4Offset = v.l3Offset;
    key.finishHash();
    key.kind = KIND_ARP;
    return KIND_ARP;
  }
  if (v.l3 !== L3_IPV4 && v.l3 !== L3_IPV6) return KIND_UNSUPPORTED;
  if (v.malformed !== null && v.l4Offset < 0) return KIND_UNSUPPORTED;
  const n = v.l3 === L3_IPV4 ? 4 : 16;
  key.family = v.l3 === L3_IPV4 ? 4 : 6;
  key.proto = v.ipProto;
  for (let i = 0; i < n; i++) {
    key.src[i] = b[v.ipSrcOffset + i]!;
    key.dst[i] = b[v.ipDstOffset + i]!;
  }
  key.l3Offset = v.l3Offset;
  key.l4Offset = v.l4Offset >= 0 ? v.l4Offset : v.ipEnd;
  key.ipHeaderLen = key.l4Offset - v.l3Offset;
  let kind: PacketKind;
  if (v.ipProto === IPPROTO_TCP && v.srcPort >= 0 && v.malformed === null) {
    key.sport = v.srcPort;
    key.dport = v.dstPort;
    kind = KIND_TCP;
  } else if (v.ipProto === IPPROTO_UDP && v.srcPort >= 0) {
    key.sport = v.srcPort;
    key.dport = v.dstPort;
    kind = KIND_UDP;
  } else if ((v.ipProto === IPPROTO_ICMP || v.ipProto === IPPROTO_ICMPV6) && v.icmpType >= 0) {
    if (v.icmpId >= 0) {
      key.sport = v.icmpId;
      key.dport = v.icmpId;
    }
    kind = KIND_ICMP;
  } else {
    portsWord(v.ipProto, b, key.l4Offset, v.ipEnd, key);
    kind = KIND_OTHER;
  }
  key.finishHash();
  key.kind = kind;
  return kind;
}
