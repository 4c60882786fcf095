// IPv6 header (RFC 8200) and its extension-header chain (§4), including the
// fragment header (§4.5) and AH (RFC 4302, length in 4-byte units).

import { decodeL4 } from './l4.ts';
import {L3_IPV6, type PacketView } from './packet-view.ts';
import { u16be, u32be } from '../codec/bytes.ts';

export const IPV6_HEADER_BYTES = 40;
export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;
export const IPPROTO_MOBILITY = 135;
export const IPPROTO_HIP = 139;
export const IPPROTO_SHIM6 = 140;
/** Bound on the chain walk so a crafted loop of headers costs little. */
export const IPV6_MAX_EXT_HEADERS = 32;

function isGenericExt(nh: number): boolean {
  return (
    nh === IPPROTO_HOPOPTS ||
    nh === IPPROTO_ROUTING ||
    nh === IPPROTO_DSTOPTS ||
    nh === IPPROTO_MOBILITY ||
    nh === IPPROTO_HIP ||
    nh === IPPROTO_SHIM6
  );
}

export function decodeIpv6(v: PacketView, off: number): void {
  const b = v.buf;
  if (v.length - off < IPV6_HEADER_BYTES) return v.fail('ipv6-truncated', true);
  if (b[off]! >> 4 !== 6) return v.fail('ipv6-bad-version');
  v.l3 = L3_IPV6;
  v.l3Offset = off;
  v.ipHeaderLen = IPV6_HEADER_BYTES;
  const w0 = u32be(b, off);
  v.ipTos = (w0 >>> 20) & 0xff;
  v.ipFlowLabel = w0 & 0xfffff;
  const plen = u16be(b, off + 4);
  let nh = b[off + 6]!;
  v.ip6FirstNextHeader = nh;
  v.ipTtl = b[off + 7]!;
  v.ipSrcOffset = off + 8;
  v.ipDstOffset = off + 24;
  v.ipTotalLen = IPV6_HEADER_BYTES + plen;
  // Payload length 0 is legal only for a jumbogram (RFC 2675), whose length
  // lives in a hop-by-hop option (Linux BIG TCP sends these): take the
  // captured bytes then. Without a hop-by-hop header it is a lie.
  if (plen === 0 && nh !== IPPROTO_HOPOPTS) return v.fail('ipv6-zero-payload-length');
  let end = plen === 0 ? v.length : off + IPV6_HEADER_BYTES + plen;
  if (end > v.length) {
    v.truncated = true;
    end = v.length;
  }
  v.ipEnd = end;
  let pos = off + IPV6_HEADER_BYTES;
  let nhField = off + 6;
  let fragmentTail = false;
  for (;;) {
    if (isGenericExt(nh) || nh === IPPROTO_AH || nh === IPPROTO_FRAGMENT) {
      if (v.ip6ExtCount >= IPV6_MAX_EXT_HEADERS) return v.fail('ipv6-too-many-extension-headers');
      if (end - pos < 8) return v.fail('ipv6-extension-truncated', true);
      v.ip6ExtCount++;
      const next = b[pos]!;
      let hlen: number;
      if (nh === IPPROTO_FRAGMENT) {
        hlen = 8;
        const fo = u16be(b, pos + 2);
        v.ip6HasFragHeader = true;
        v.ip6FragHeaderOffset = pos;
        v.ip6FragPrevNhOffset = nhField;
        v.ipFragOffset = fo & 0xfff8;
        v.ipMf = (fo & 1) !== 0;
        v.ip6FragId = u32be(b, pos + 4);
        if (v.ipFragOffset !== 0) fragmentTail = true;
      } else if (nh === IPPROTO_AH) {
        hlen = (b[pos + 1]! + 2) * 4;
      } else {
        hlen = (b[pos + 1]! + 1) * 8;
      }
      if (end - pos < hlen) return v.fail('ipv6-extension-truncated', true);
      nhField = pos;
      pos += hlen;
      nh = next;
      if (fragmentTail) break;
      continue;
    }
    break;
  }
  v.ipProto = nh;
  if (fragmentTail || nh === IPPROTO_NONE) return;
  decodeL4(v, nh, pos, end);
}
