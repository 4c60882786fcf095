// A plain-object summary of a decoded packet, for `netrr decode` and for
// reports. Field names and values follow tshark's where one exists, so the
// two can be compared field by field (see test/decode-corpus.test.ts).

import { formatIpv4, formatIpv6, formatMac, hex } from './format.ts';
import { IPPROTO_TCP, L3_ARP, L3_IPV4, L3_IPV6, type PacketView } from './packet-view.ts';

export interface PacketSummary {
  frame: number;
  time: string;
  caplen: number;
  len: number;
  ethSrc?: string;
  ethDst?: string;
  ethType?: string;
  vlans?: number[];
  ipVersion?: number;
  ipSrc?: string;
  ipDst?: string;
  ipProto?: number;
  ipTtl?: number;
  ipId?: number;
  ipDf?: boolean;
  ipMf?: boolean;
  ipFragOffset?: number;
  arpOp?: number;
  srcPort?: number;
  dstPort?: number;
  tcpSeq?: number;
  tcpAck?: number;
  tcpFlags?: string;
  tcpWindow?: number;
  tcpOptions?: string;
  icmpType?: number;
  icmpCode?: number;
  payloadLen?: number;
  malformed: string | null;
}

const TCP_FLAG_NAMES = ['F', 'S', 'R', 'P', '.', 'U', 'E', 'W', 'N'];

export function tcpFlagLetters(flags: number): string {
  let s = '';
  for (let i = 0; i < TCP_FLAG_NAMES.length; i++) if (flags & (1 << i)) s += TCP_FLAG_NAMES[i];
  return s === '' ? 'none' : s;
}

function tcpOptionsText(v: PacketView): string {
  const parts: string[] = [];
  if (v.tcpMss >= 0) parts.push(`mss ${v.tcpMss}`);
  if (v.tcpWscale >= 0) parts.push(`wscale ${v.tcpWscale}`);
  if (v.tcpSackPermitted) parts.push('sackOK');
  if (v.tcpSackBlocks > 0) parts.push(`sack ${v.tcpSackBlocks}`);
  if (v.tcpHasTimestamp) parts.push(`TS val ${v.tcpTsVal} ecr ${v.tcpTsEcr}`);
  return parts.join(',');
}

export function summarize(v: PacketView, frame: number, time: string, originalLength: number): PacketSummary {
  const b = v.buf;
  const s: PacketSummary = { frame, time, caplen: v.length, len: originalLength, malformed: v.malformed };
  if (v.hasEthernet) {
    s.ethDst = formatMac(b, v.l2Offset);
    s.ethSrc = formatMac(b, v.l2Offset + 6);
  }
  if (v.vlanCount > 0) s.vlans = v.vlanTci.slice(0, v.vlanCount).map((t) => t & 0x0fff);
  if (v.etherType >= 0) s.ethType = hex(v.etherType, 4);
  if (v.l3 === L3_IPV4 || v.l3 === L3_IPV6) {
    const fmt = v.l3 === L3_IPV4 ? formatIpv4 : formatIpv6;
    s.ipVersion = v.l3;
    s.ipSrc = fmt(b, v.ipSrcOffset);
    s.ipDst = fmt(b, v.ipDstOffset);
    if (v.ipProto >= 0) s.ipProto = v.ipProto;
    s.ipTtl = v.ipTtl;
    if (v.l3 === L3_IPV4) {
      s.ipId = v.ipId;
      s.ipDf = v.ipDf;
    }
    if (v.l3 === L3_IPV4 || v.ip6HasFragHeader) {
      s.ipMf = v.ipMf;
      s.ipFragOffset = v.ipFragOffset;
    }
  } else if (v.l3 === L3_ARP) {
    s.arpOp = v.arpOp;
    if (v.ipSrcOffset >= 0) {
      s.ipSrc = formatIpv4(b, v.ipSrcOffset);
      s.ipDst = formatIpv4(b, v.ipDstOffset);
    }
  }
  if (v.srcPort >= 0) {
    s.srcPort = v.srcPort;
    s.dstPort = v.dstPort;
  }
  if (v.ipProto === IPPROTO_TCP && v.srcPort >= 0) {
    s.tcpSeq = v.tcpSeq;
    s.tcpAck = v.tcpAck;
    s.tcpFlags = hex(v.tcpFlags, 4);
    s.tcpWindow = v.tcpWindow;
    const opts = tcpOptionsText(v);
    if (opts !== '') s.tcpOptions = opts;
  }
  if (v.icmpType >= 0) {
    s.icmpType = v.icmpType;
    s.icmpCode = v.icmpCode;
  }
  if (v.payloadOffset >= 0) s.payloadLen = v.payloadLength;
  return s;
}

/** One human-readable line per packet. */
export function summaryLine(s: PacketSummary, v: PacketView): string {
  let line = `${s.frame} ${s.time} ${s.caplen}/${s.len}`;
  if (s.ethSrc !== undefined) line += ` ${s.ethSrc} > ${s.ethDst}`;
  if (s.vlans !== undefined) line += ` vlan ${s.vlans.join('.')}`;
  if (s.ethType !== undefined) line += ` type ${s.ethType}`;
  if (s.ipVersion !== undefined) {
    const sp = s.srcPort !== undefined ? (s.ipVersion === 6 ? `.${s.srcPort}` : `:${s.srcPort}`) : '';
    const dp = s.dstPort !== undefined ? (s.ipVersion === 6 ? `.${s.dstPort}` : `:${s.dstPort}`) : '';
    line += ` IPv${s.ipVersion} ${s.ipSrc}${sp} > ${s.ipDst}${dp} proto ${s.ipProto ?? '-'} ttl ${s.ipTtl}`;
    if (s.ipId !== undefined) line += ` id ${s.ipId}`;
    if (s.ipDf === true) line += ' DF';
    if (s.ipMf === true || (s.ipFragOffset ?? 0) > 0) line += ` frag ${s.ipFragOffset}${s.ipMf ? '+' : ''}`;
  } else if (s.arpOp !== undefined) {
    line += ` ARP op ${s.arpOp}`;
    if (s.ipSrc !== undefined) line += ` ${s.ipSrc} > ${s.ipDst}`;
  }
  if (s.tcpSeq !== undefined) {
    line += ` TCP [${tcpFlagLetters(v.tcpFlags)}] seq ${s.tcpSeq} ack ${s.tcpAck} win ${s.tcpWindow}`;
    if (s.tcpOptions !== undefined) line += ` <${s.tcpOptions}>`;
  }
  if (s.icmpType !== undefined) line += ` ICMP type ${s.icmpType} code ${s.icmpCode}`;
  if (s.payloadLen !== undefined) line += ` payload ${s.payloadLen}`;
  if (s.malformed !== null) line += ` malformed ${s.malformed}`;
  return line;
}
