// Builds well-formed Ethernet frames (IPv4/IPv6, UDP/TCP/ICMP, VLAN tags,
// fragments) with their checksums filled in: for the demo's traffic sources
// and the tests. Not a hot path: it builds through plain arrays.

import { fillIpv4HeaderChecksum, fillL4Checksum } from './checksum.ts';
import { PacketView } from './packet-view.ts';

export interface FrameSpec {
  src?: string;
  dst?: string;
  vlans?: number[];
  /** 'ipv4' (default) or 'ipv6' */
  ip?: 4 | 6;
  ipSrc?: string;
  ipDst?: string;
  ttl?: number;
  ipId?: number;
  proto?: 'udp' | 'tcp' | 'icmp' | number;
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  tcpFlags?: number;
  window?: number;
  tcpOptions?: number[];
  icmpType?: number;
  icmpId?: number;
  payload?: Uint8Array | string;
  fragOffsetBytes?: number;
  moreFragments?: boolean;
}

function mac(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

function v4(s: string): number[] {
  return s.split('.').map(Number);
}

function v6(s: string): number[] {
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const words = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((w) => parseInt(w, 16));
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/** A frame as the spec says; unset fields take the defaults shown in the code. */
export function buildFrame(spec: FrameSpec = {}): Uint8Array {
  const payload = typeof spec.payload === 'string' ? new TextEncoder().encode(spec.payload) : (spec.payload ?? new Uint8Array(0));
  const proto = spec.proto ?? 'udp';
  const isV6 = spec.ip === 6;
  const protoNum = proto === 'udp' ? 17 : proto === 'tcp' ? 6 : proto === 'icmp' ? (isV6 ? 58 : 1) : proto;
  const bytes: number[] = [...mac(spec.dst ?? '52:54:00:12:34:57'), ...mac(spec.src ?? '52:54:00:12:34:56')];
  for (const id of spec.vlans ?? []) bytes.push(0x81, 0x00, id >> 8, id & 0xff);
  bytes.push(...(isV6 ? [0x86, 0xdd] : [0x08, 0x00]));
  let l4: number[];
  if (protoNum === 17) l4 = [0, 0, 0, 0, 0, 0, 0, 0];
  else if (protoNum === 6) {
    const opts = spec.tcpOptions ?? [];
    const hl = 20 + opts.length;
    l4 = new Array(20).fill(0).concat(opts);
    l4[12] = (hl / 4) << 4;
  } else if (protoNum === 1 || protoNum === 58) l4 = [spec.icmpType ?? (isV6 ? 128 : 8), 0, 0, 0, (spec.icmpId ?? 1) >> 8, (spec.icmpId ?? 1) & 0xff, 0, 1];
  else l4 = [];
  const l4Len = l4.length + payload.length;
  if (!isV6) {
    const total = 20 + l4Len;
    const fo = ((spec.fragOffsetBytes ?? 0) / 8) | (spec.moreFragments ? 0x2000 : 0);
    bytes.push(0x45, 0, total >> 8, total & 0xff, (spec.ipId ?? 1) >> 8, (spec.ipId ?? 1) & 0xff, fo >> 8, fo & 0xff, spec.ttl ?? 64, protoNum, 0, 0);
    bytes.push(...v4(spec.ipSrc ?? '10.0.0.1'), ...v4(spec.ipDst ?? '10.0.0.2'));
  } else {
    bytes.push(0x60, 0, 0, 0, l4Len >> 8, l4Len & 0xff, protoNum, spec.ttl ?? 64);
    bytes.push(...v6(spec.ipSrc ?? 'fd00::1'), ...v6(spec.ipDst ?? 'fd00::2'));
  }
  const l4Start = bytes.length;
  bytes.push(...l4);
  const frame = new Uint8Array(bytes.length + payload.length);
  frame.set(bytes);
  frame.set(payload, bytes.length);
  const w16 = (o: number, v: number): void => {
    frame[o] = (v >> 8) & 0xff;
    frame[o + 1] = v & 0xff;
  };
  const w32 = (o: number, v: number): void => {
    w16(o, v >>> 16);
    w16(o + 2, v & 0xffff);
  };
  if (protoNum === 17) {
    w16(l4Start, spec.srcPort ?? 1234);
    w16(l4Start + 2, spec.dstPort ?? 5678);
    w16(l4Start + 4, l4Len);
  } else if (protoNum === 6) {
    w16(l4Start, spec.srcPort ?? 1234);
    w16(l4Start + 2, spec.dstPort ?? 80);
    w32(l4Start + 4, spec.seq ?? 1000);
    w32(l4Start + 8, spec.ack ?? 0);
    frame[l4Start + 13] = spec.tcpFlags ?? 0x18;
    w16(l4Start + 14, spec.window ?? 65535);
  }
  const v = new PacketView().decode(frame);
  fillIpv4HeaderChecksum(v);
  if (!spec.moreFragments && (spec.fragOffsetBytes ?? 0) === 0) fillL4Checksum(v);
  return frame;
}
