// virtio-net header in front of a frame (virtio spec 1.x §5.1.6; reference
// colo-proxy.md §7: QEMU accepts up to 20 bytes, sizeof virtio_net_hdr_v1_hash).
// Sizes: 10 (virtio_net_hdr), 12 (+num_buffers, or the v1 layout), 20 (+hash).
// Fields are little-endian (virtio 1.0; legacy devices on x86 are LE as well).

import {type PacketView } from './packet-view.ts';
import { u16le, u32le } from '../codec/bytes.ts';

export const VNET_HDR_BYTES = 10;
export const VNET_HDR_MRG_BYTES = 12;
export const VNET_HDR_HASH_BYTES = 20;
/** QEMU's parse_packet_early treats anything longer as unsupported. */
export const VNET_HDR_MAX_BYTES = 20;

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Decodes the header; returns the offset of the Ethernet frame, or -1 when it does not fit. */
export function decodeVnetHeader(v: PacketView, len: number): number {
  const b = v.buf;
  if (len > VNET_HDR_MAX_BYTES) {
    v.fail('vnet-header-too-long');
    return -1;
  }
  if (len > v.length) {
    v.fail('vnet-header-truncated', true);
    return -1;
  }
  v.vnetHdrLen = len;
  v.vnetFlags = 0;
  v.vnetGsoType = 0;
  v.vnetHdrLenField = 0;
  v.vnetGsoSize = 0;
  v.vnetCsumStart = 0;
  v.vnetCsumOffset = 0;
  v.vnetNumBuffers = 0;
  v.vnetHashValue = 0;
  v.vnetHashReport = 0;
  if (len >= VNET_HDR_BYTES) {
    v.vnetFlags = b[0]!;
    v.vnetGsoType = b[1]!;
    v.vnetHdrLenField = u16le(b, 2);
    v.vnetGsoSize = u16le(b, 4);
    v.vnetCsumStart = u16le(b, 6);
    v.vnetCsumOffset = u16le(b, 8);
  }
  if (len >= VNET_HDR_MRG_BYTES) v.vnetNumBuffers = u16le(b, 10);
  if (len >= VNET_HDR_HASH_BYTES) {
    v.vnetHashValue = u32le(b, 12);
    v.vnetHashReport = u16le(b, 16);
  }
  return len;
}
