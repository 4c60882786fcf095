// IPv4 header (RFC 791). Options are bounded by IHL and not interpreted.

import { decodeL4 } from './l4.ts';
import {L3_IPV4, type PacketView } from './packet-view.ts';
import { u16be } from '../codec/bytes.ts';

export const IPV4_MIN_HEADER_BYTES = 20;
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;

export function decodeIpv4(v: PacketView, off: number): void {
  const b = v.buf;
  const avail = v.length - off;
  if (avail < IPV4_MIN_HEADER_BYTES) return v.fail('ipv4-truncated', true);
  if (b[off]! >> 4 !== 4) return v.fail('ipv4-bad-version');
  v.l3 = L3_IPV4;
  v.l3Offset = off;
  const hl = (b[off]! & 0x0f) * 4;
  v.ipHeaderLen = hl;
  v.ipTos = b[off + 1]!;
  const total = u16be(b, off + 2);
  v.ipTotalLen = total;
  v.ipId = u16be(b, off + 4);
  const ff = u16be(b, off + 6);
  v.ipDf = (ff & FLAG_DF) !== 0;
  v.ipMf = (ff & FLAG_MF) !== 0;
  v.ipFragOffset = (ff & FRAG_OFFSET_MASK) * 8;
  v.ipTtl = b[off + 8]!;
  v.ipProto = b[off + 9]!;
  v.ipChecksum = u16be(b, off + 10);
  v.ipSrcOffset = off + 12;
  v.ipDstOffset = off + 16;
  if (hl < IPV4_MIN_HEADER_BYTES) return v.fail('ipv4-bad-header-length');
  if (hl > avail) return v.fail('ipv4-options-truncated', true);
  // Total length 0 is what TSO/GSO hands to a capture point: the frame is the datagram.
  let end = total === 0 ? v.length : off + total;
  if (total !== 0 && total < hl) return v.fail('ipv4-bad-total-length');
  if (end > v.length) {
    v.truncated = true;
    end = v.length;
  }
  v.ipEnd = end;
  if (v.ipFragOffset !== 0) return; // later fragment: no L4 header here
  decodeL4(v, v.ipProto, off + hl, end);
}
