// ARP (RFC 826). Address offsets follow from l3Offset, hardware and protocol
// address lengths; for Ethernet/IPv4 they are 8, 14, 18 and 24.

import {L3_ARP, type PacketView } from './packet-view.ts';
import { u16be } from '../codec/bytes.ts';

export const ARP_FIXED_BYTES = 8;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export function decodeArp(v: PacketView, off: number): void {
  const b = v.buf;
  if (v.length - off < ARP_FIXED_BYTES) return v.fail('arp-truncated', true);
  v.l3 = L3_ARP;
  v.l3Offset = off;
  const hlen = b[off + 4]!;
  const plen = b[off + 5]!;
  v.arpOp = u16be(b, off + 6);
  const need = ARP_FIXED_BYTES + 2 * (hlen + plen);
  if (v.length - off < need) return v.fail('arp-truncated', true);
  v.ipHeaderLen = need;
  v.ipEnd = off + need;
  if (plen === 4) {
    v.ipSrcOffset = off + 8 + hlen;
    v.ipDstOffset = off + 8 + 2 * hlen + plen;
  }
}
