// Link layers: Ethernet II / 802.3 with 802.1Q, 802.1ad (QinQ) and the old
// 0x9100 tag; BSD loopback (NULL/LOOP); Linux cooked (SLL); raw IP.

import { decodeArp } from './arp.ts';
import { decodeIpv4 } from './ipv4.ts';
import { decodeIpv6 } from './ipv6.ts';
import {LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, MAX_VLAN_TAGS, type PacketView,  } from './packet-view.ts';
import { u16be, u32be, u32le } from '../codec/bytes.ts';
import { decodeVnetHeader } from './vnet-header.ts';

export const ETH_HEADER_BYTES = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_QINQ_OLD = 0x9100;
/** EtherType values ≤ 1500 are 802.3 lengths; 1501–1535 are undefined. */
export const ETH_MAX_LENGTH_FIELD = 1500;
export const ETH_MIN_ETHERTYPE = 0x0600;
const SLL_HEADER_BYTES = 16;
const NULL_HEADER_BYTES = 4;
// BSD address families for IPv6 differ by OS (24 NetBSD/OpenBSD, 28 FreeBSD, 30 Darwin).
const AF_INET = 2;
const AF_INET6_VALUES = [10, 24, 28, 30];

export function isVlanTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD;
}

export function decodeLink(v: PacketView, vnetHdrLen: number): void {
  let off = 0;
  if (vnetHdrLen > 0) {
    off = decodeVnetHeader(v, vnetHdrLen);
    if (off < 0) return;
  }
  v.l2Offset = off;
  switch (v.linkType) {
    case LINKTYPE_ETHERNET:
      decodeEthernet(v, off);
      return;
    case LINKTYPE_RAW:
      decodeRawIp(v, off);
      return;
    case LINKTYPE_IPV4:
      v.etherType = ETHERTYPE_IPV4;
      decodeIpv4(v, off);
      return;
    case LINKTYPE_IPV6:
      v.etherType = ETHERTYPE_IPV6;
      decodeIpv6(v, off);
      return;
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP:
      decodeNull(v, off);
      return;
    case LINKTYPE_LINUX_SLL:
      if (v.length - off < SLL_HEADER_BYTES) return v.fail('sll-truncated', true);
      dispatchEtherType(v, u16be(v.buf, off + 14), off + SLL_HEADER_BYTES);
      return;
    default:
      return; // passed through undecoded
  }
}

function decodeEthernet(v: PacketView, off: number): void {
  const b = v.buf;
  if (v.length - off < ETH_HEADER_BYTES) return v.fail('ethernet-truncated', true);
  v.hasEthernet = true;
  let pos = off + 12;
  let type = u16be(b, pos);
  pos += 2;
  while (isVlanTpid(type)) {
    if (v.length - pos < 4) return v.fail('vlan-truncated', true);
    if (v.vlanCount < MAX_VLAN_TAGS) {
      v.vlanTpid[v.vlanCount] = type;
      v.vlanTci[v.vlanCount] = u16be(b, pos);
      v.vlanCount++;
    } else {
      return v.fail('too-many-vlan-tags');
    }
    type = u16be(b, pos + 2);
    pos += 4;
  }
  if (type <= ETH_MAX_LENGTH_FIELD) {
    v.ethLength = type; // 802.3 + LLC: not decoded further
    return;
  }
  dispatchEtherType(v, type, pos);
}

function dispatchEtherType(v: PacketView, type: number, pos: number): void {
  v.etherType = type;
  if (type === ETHERTYPE_IPV4) decodeIpv4(v, pos);
  else if (type === ETHERTYPE_IPV6) decodeIpv6(v, pos);
  else if (type === ETHERTYPE_ARP) decodeArp(v, pos);
}

function decodeRawIp(v: PacketView, off: number): void {
  if (v.length - off < 1) return v.fail('ip-truncated', true);
  const version = v.buf[off]! >> 4;
  if (version === 4) {
    v.etherType = ETHERTYPE_IPV4;
    decodeIpv4(v, off);
  } else if (version === 6) {
    v.etherType = ETHERTYPE_IPV6;
    decodeIpv6(v, off);
  } else {
    v.fail('ip-bad-version');
  }
}

function decodeNull(v: PacketView, off: number): void {
  if (v.length - off < NULL_HEADER_BYTES) return v.fail('loopback-truncated', true);
  // LINKTYPE_NULL is in the writer's byte order; LOOP is big-endian. Accept either.
  const be = u32be(v.buf, off);
  const family = v.linkType === LINKTYPE_LOOP ? be : be < 0x10000 ? be : u32le(v.buf, off);
  const pos = off + NULL_HEADER_BYTES;
  if (family === AF_INET) {
    v.etherType = ETHERTYPE_IPV4;
    decodeIpv4(v, pos);
  } else if (AF_INET6_VALUES.includes(family)) {
    v.etherType = ETHERTYPE_IPV6;
    decodeIpv6(v, pos);
  }
}
