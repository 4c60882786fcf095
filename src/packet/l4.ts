// Transport headers: TCP (RFC 9293) with the options COLO and replay care
// about (MSS, window scale RFC 7323, SACK RFC 2018, timestamps RFC 7323),
// UDP (RFC 768), ICMP (RFC 792) and ICMPv6 (RFC 4443).

import {IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, type PacketView } from './packet-view.ts';
import { u16be, u32be } from '../codec/bytes.ts';

export const TCP_MIN_HEADER_BYTES = 20;
export const UDP_HEADER_BYTES = 8;
export const ICMP_MIN_HEADER_BYTES = 4;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_MSS = 2;
const TCPOPT_WSCALE = 3;
const TCPOPT_SACK_PERMITTED = 4;
const TCPOPT_SACK = 5;
const TCPOPT_TIMESTAMP = 8;

const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;

export function decodeL4(v: PacketView, proto: number, off: number, end: number): void {
  v.l4Offset = off;
  if (proto === IPPROTO_TCP) return decodeTcp(v, off, end);
  if (proto === IPPROTO_UDP) return decodeUdp(v, off, end);
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) return decodeIcmp(v, proto, off, end);
  v.payloadOffset = off;
  v.payloadLength = end > off ? end - off : 0;
}

function decodeTcp(v: PacketView, off: number, end: number): void {
  const b = v.buf;
  if (end - off < TCP_MIN_HEADER_BYTES) return v.fail('tcp-truncated', true);
  v.srcPort = u16be(b, off);
  v.dstPort = u16be(b, off + 2);
  v.tcpSeq = u32be(b, off + 4);
  v.tcpAck = u32be(b, off + 8);
  const w = u16be(b, off + 12);
  v.tcpFlags = w & 0x0fff;
  v.tcpWindow = u16be(b, off + 14);
  v.l4Checksum = u16be(b, off + 16);
  v.tcpUrgent = u16be(b, off + 18);
  const hl = (w >>> 12) * 4;
  v.l4HeaderLen = hl;
  if (hl < TCP_MIN_HEADER_BYTES) return v.fail('tcp-bad-header-length');
  if (end - off < hl) return v.fail('tcp-options-truncated', true);
  v.payloadOffset = off + hl;
  v.payloadLength = end - off - hl;
  if (hl > TCP_MIN_HEADER_BYTES) decodeTcpOptions(v, off + TCP_MIN_HEADER_BYTES, off + hl);
}

function decodeTcpOptions(v: PacketView, pos: number, end: number): void {
  const b = v.buf;
  while (pos < end) {
    const kind = b[pos]!;
    if (kind === TCPOPT_EOL) return;
    if (kind === TCPOPT_NOP) {
      pos++;
      continue;
    }
    if (end - pos < 2) return v.fail('tcp-bad-option');
    const len = b[pos + 1]!;
    if (len < 2 || end - pos < len) return v.fail('tcp-bad-option');
    if (kind === TCPOPT_MSS && len === 4) v.tcpMss = u16be(b, pos + 2);
    else if (kind === TCPOPT_WSCALE && len === 3) v.tcpWscale = b[pos + 2]!;
    else if (kind === TCPOPT_SACK_PERMITTED && len === 2) v.tcpSackPermitted = true;
    else if (kind === TCPOPT_SACK && (len - 2) % 8 === 0) {
      v.tcpSackBlocks = (len - 2) / 8;
      v.tcpSackOffset = pos + 2;
    } else if (kind === TCPOPT_TIMESTAMP && len === 10) {
      v.tcpHasTimestamp = true;
      v.tcpTsOffset = pos + 2;
      v.tcpTsVal = u32be(b, pos + 2);
      v.tcpTsEcr = u32be(b, pos + 6);
    }
    pos += len;
  }
}

function decodeUdp(v: PacketView, off: number, end: number): void {
  const b = v.buf;
  if (end - off < UDP_HEADER_BYTES) return v.fail('udp-truncated', true);
  v.srcPort = u16be(b, off);
  v.dstPort = u16be(b, off + 2);
  const len = u16be(b, off + 4);
  v.udpLength = len;
  v.l4Checksum = u16be(b, off + 6);
  v.l4HeaderLen = UDP_HEADER_BYTES;
  v.payloadOffset = off + UDP_HEADER_BYTES;
  // Length 0 appears with IPv6 jumbograms (RFC 2675) and GSO: use the IP end.
  if (len !== 0 && len < UDP_HEADER_BYTES) {
    v.payloadLength = 0;
    return v.fail('udp-bad-length');
  }
  const udpEnd = len === 0 ? end : off + len;
  if (udpEnd > end) {
    v.payloadLength = end - off - UDP_HEADER_BYTES;
    if (!v.truncated) v.fail('udp-length-exceeds-ip');
    return;
  }
  v.payloadLength = udpEnd - off - UDP_HEADER_BYTES;
}

function decodeIcmp(v: PacketView, proto: number, off: number, end: number): void {
  const b = v.buf;
  if (end - off < ICMP_MIN_HEADER_BYTES) return v.fail('icmp-truncated', true);
  const type = b[off]!;
  v.icmpType = type;
  v.icmpCode = b[off + 1]!;
  v.l4Checksum = u16be(b, off + 2);
  v.l4HeaderLen = ICMP_MIN_HEADER_BYTES;
  const echo =
    proto === IPPROTO_ICMP
      ? type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY
      : type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY;
  if (echo && end - off >= 8) {
    v.icmpId = u16be(b, off + 4);
    v.l4HeaderLen = 8;
  }
  v.payloadOffset = off + v.l4HeaderLen;
  v.payloadLength = end - v.payloadOffset;
}
