// A canonical flow key: both directions of a conversation map to one key.
// The endpoint (address, port) that sorts lower becomes side A; `reversed`
// tells whether this packet travels B→A. Reference colo-proxy.md §7 lets us
// choose our own canonical 5-tuple; ICMP echo uses the identifier as both
// ports so that concurrent pings are separate flows, other ICMP uses 0.

import { L3_IPV4, L3_IPV6, type PacketView, IPPROTO_ICMP, IPPROTO_ICMPV6 } from './packet-view.ts';
import { u16be } from '../codec/bytes.ts';

export class FlowKey {
  /** 4 or 6; 0 when the packet has no IP layer. */
  family = 0;
  proto = -1;
  /** Addresses of side A and side B (16 bytes; IPv4 uses the first 4). */
  readonly addrA = new Uint8Array(16);
  readonly addrB = new Uint8Array(16);
  portA = 0;
  portB = 0;
  /** This packet goes from B to A. */
  reversed = false;
  /** 32-bit FNV-1a over the canonical tuple, for hash tables. */
  hash = 0;

  equals(o: FlowKey): boolean {
    if (this.hash !== o.hash || this.family !== o.family || this.proto !== o.proto) return false;
    if (this.portA !== o.portA || this.portB !== o.portB) return false;
    const n = this.family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) if (this.addrA[i] !== o.addrA[i] || this.addrB[i] !== o.addrB[i]) return false;
    return true;
  }

  copyFrom(o: FlowKey): this {
    this.family = o.family;
    this.proto = o.proto;
    this.addrA.set(o.addrA);
    this.addrB.set(o.addrB);
    this.portA = o.portA;
    this.portB = o.portB;
    this.reversed = o.reversed;
    this.hash = o.hash;
    return this;
  }

  toString(): string {
    const fmt = this.family === 4 ? formatV4 : formatV6;
    return `${this.proto} ${fmt(this.addrA)}:${this.portA} <-> ${fmt(this.addrB)}:${this.portB}`;
  }
}

function formatV4(a: Uint8Array): string {
  return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
}

function formatV6(a: Uint8Array): string {
  return `[${Array.from({ length: 8 }, (_, i) => u16be(a, 2 * i).toString(16)).join(':')}]`;
}

/** Compares (addr, port) of source vs destination in the frame: <0 when source sorts first. */
function compareEndpoints(v: PacketView, n: number, srcPort: number, dstPort: number): number {
  const b = v.buf;
  for (let i = 0; i < n; i++) {
    const d = b[v.ipSrcOffset + i]! - b[v.ipDstOffset + i]!;
    if (d !== 0) return d;
  }
  return srcPort - dstPort;
}

/** Fills `key` from a decoded packet. Returns false when it has no IP layer. */
export function fillFlowKey(v: PacketView, key: FlowKey): boolean {
  if (v.l3 !== L3_IPV4 && v.l3 !== L3_IPV6) {
    key.family = 0;
    return false;
  }
  const n = v.l3 === L3_IPV4 ? 4 : 16;
  let sp = 0;
  let dp = 0;
  if (v.srcPort >= 0) {
    sp = v.srcPort;
    dp = v.dstPort;
  } else if ((v.ipProto === IPPROTO_ICMP || v.ipProto === IPPROTO_ICMPV6) && v.icmpId >= 0) {
    sp = v.icmpId;
    dp = v.icmpId;
  }
  const rev = compareEndpoints(v, n, sp, dp) > 0;
  const b = v.buf;
  const aOff = rev ? v.ipDstOffset : v.ipSrcOffset;
  const bOff = rev ? v.ipSrcOffset : v.ipDstOffset;
  key.family = n === 4 ? 4 : 6;
  key.proto = v.ipProto;
  key.addrA.fill(0);
  key.addrB.fill(0);
  for (let i = 0; i < n; i++) {
    key.addrA[i] = b[aOff + i]!;
    key.addrB[i] = b[bOff + i]!;
  }
  key.portA = rev ? dp : sp;
  key.portB = rev ? sp : dp;
  key.reversed = rev;
  key.hash = flowHash(key.family, key.proto & 0xff, key.addrA, key.addrB, n, key.portA, key.portB);
  return true;
}

/** FNV-1a over a flow's family, protocol, the first `n` bytes of both addresses (interleaved) and both ports. */
export function flowHash(family: number, proto: number, a: Uint8Array, b: Uint8Array, n: number, portA: number, portB: number): number {
  let h = 0x811c9dc5 ^ family;
  h = Math.imul(h ^ proto, 0x01000193);
  for (let i = 0; i < n; i++) {
    h = Math.imul(h ^ a[i]!, 0x01000193);
    h = Math.imul(h ^ b[i]!, 0x01000193);
  }
  h = Math.imul(h ^ portA, 0x01000193);
  h = Math.imul(h ^ portB, 0x01000193);
  return h >>> 0;
}
