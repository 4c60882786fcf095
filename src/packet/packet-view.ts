// A reusable, allocation-free view of one decoded frame. decode() fills plain
// numeric fields (offsets into the frame and header values) and never throws:
// what is wrong goes into `malformed`, a short constant string. Reading is
// always bounded by the frame: a lying length is clamped and reported.
//
// Layers: vnet header (vnet-header.ts) → link (link.ts) → IPv4/IPv6/ARP
// (ipv4.ts, ipv6.ts, arp.ts) → TCP/UDP/ICMP (l4.ts).

import { decodeLink } from './link.ts';

export const L3_NONE = 0;
export const L3_IPV4 = 4;
export const L3_IPV6 = 6;
export const L3_ARP = 0x0806;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

/** pcap LINKTYPE_ values understood by the decoder; others decode no layers. */
export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

/** Maximum VLAN tags kept (outer first). */
export const MAX_VLAN_TAGS = 4;

export class PacketView {
  buf: Uint8Array = new Uint8Array(0);
  /** Captured bytes decoded (buf.length). */
  length = 0;
  linkType = LINKTYPE_ETHERNET;
  /** What was wrong, or null. Constant strings: no allocation. */
  malformed: string | null = null;
  /** The frame ended before a header that its outer layer announced. */
  truncated = false;

  // virtio-net header (in front of the Ethernet frame), see vnet-header.ts
  vnetHdrLen = 0;
  vnetFlags = 0;
  vnetGsoType = 0;
  vnetHdrLenField = 0;
  vnetGsoSize = 0;
  vnetCsumStart = 0;
  vnetCsumOffset = 0;
  vnetNumBuffers = 0;
  vnetHashValue = 0;
  vnetHashReport = 0;

  // link layer
  l2Offset = 0;
  hasEthernet = false;
  /** EtherType after all VLAN tags; -1 when the link has none (or 802.3 length, see ethLength). */
  etherType = -1;
  /** 802.3 length field (EtherType ≤ 1500), else -1. */
  ethLength = -1;
  vlanCount = 0;
  readonly vlanTpid: number[] = [0, 0, 0, 0];
  readonly vlanTci: number[] = [0, 0, 0, 0];

  // network layer
  l3 = L3_NONE;
  l3Offset = -1;
  ipHeaderLen = 0;
  ipTotalLen = 0;
  ipTos = 0;
  ipId = 0;
  ipDf = false;
  ipMf = false;
  /** Fragment offset in bytes. */
  ipFragOffset = 0;
  ipTtl = 0;
  ipChecksum = 0;
  ipFlowLabel = 0;
  /** First next-header of IPv6 (before extension headers). */
  ip6FirstNextHeader = -1;
  ip6HasFragHeader = false;
  ip6FragId = 0;
  /** Offset of the IPv6 fragment header, and of the next-header byte that points to it. */
  ip6FragHeaderOffset = -1;
  ip6FragPrevNhOffset = -1;
  ip6ExtCount = 0;
  /** Upper-layer protocol after IPv4 header / IPv6 extension walk; -1 if none. */
  ipProto = -1;
  /** Offset of the source address (4 or 16 bytes follow at srcOffset/dstOffset). */
  ipSrcOffset = -1;
  ipDstOffset = -1;
  /** End of the IP datagram within the captured bytes (clamped). */
  ipEnd = 0;
  arpOp = 0;

  // transport layer
  l4Offset = -1;
  l4HeaderLen = 0;
  srcPort = -1;
  dstPort = -1;
  tcpSeq = 0;
  tcpAck = 0;
  tcpFlags = 0;
  tcpWindow = 0;
  tcpUrgent = 0;
  l4Checksum = 0;
  udpLength = 0;
  tcpMss = -1;
  tcpWscale = -1;
  tcpSackPermitted = false;
  tcpSackBlocks = 0;
  /** Offset in buf of the first SACK block's left edge (-1: no SACK option), for in-place rewriting. */
  tcpSackOffset = -1;
  /** Offset in buf of TSval (TSecr follows at +4; -1: no timestamp option). */
  tcpTsOffset = -1;
  tcpHasTimestamp = false;
  tcpTsVal = 0;
  tcpTsEcr = 0;
  icmpType = -1;
  icmpCode = -1;
  /** ICMP echo identifier (ICMP/ICMPv6 echo), else -1. */
  icmpId = -1;

  payloadOffset = -1;
  payloadLength = 0;

  /** Decodes `buf` (one captured frame). Returns this for chaining. */
  decode(buf: Uint8Array, linkType = LINKTYPE_ETHERNET, vnetHdrLen = 0): this {
    this.#reset(buf, linkType);
    decodeLink(this, vnetHdrLen);
    return this;
  }

  /** Marks the first problem only: later layers are not decoded after one. */
  fail(reason: string, truncated = false): void {
    if (this.malformed === null) this.malformed = reason;
    if (truncated) this.truncated = true;
  }

  #reset(buf: Uint8Array, linkType: number): void {
    this.buf = buf;
    this.length = buf.length;
    this.linkType = linkType;
    this.malformed = null;
    this.truncated = false;
    this.vnetHdrLen = 0;
    this.l2Offset = 0;
    this.hasEthernet = false;
    this.etherType = -1;
    this.ethLength = -1;
    this.vlanCount = 0;
    this.l3 = L3_NONE;
    this.l3Offset = -1;
    this.ipHeaderLen = 0;
    this.ipTotalLen = 0;
    this.ipId = 0;
    this.ipDf = false;
    this.ipMf = false;
    this.ipFragOffset = 0;
    this.ipTtl = 0;
    this.ip6FirstNextHeader = -1;
    this.ip6HasFragHeader = false;
    this.ip6FragHeaderOffset = -1;
    this.ip6FragPrevNhOffset = -1;
    this.ip6ExtCount = 0;
    this.ipProto = -1;
    this.ipSrcOffset = -1;
    this.ipDstOffset = -1;
    this.ipEnd = 0;
    this.arpOp = 0;
    this.l4Offset = -1;
    this.l4HeaderLen = 0;
    this.srcPort = -1;
    this.dstPort = -1;
    this.tcpFlags = 0;
    this.tcpMss = -1;
    this.tcpWscale = -1;
    this.tcpSackPermitted = false;
    this.tcpSackBlocks = 0;
    this.tcpSackOffset = -1;
    this.tcpTsOffset = -1;
    this.tcpHasTimestamp = false;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.icmpId = -1;
    this.payloadOffset = -1;
    this.payloadLength = 0;
  }
}
