// IPv4 (RFC 791) and IPv6 (RFC 8200 §4.5) fragment reassembly for extended
// compare: fragments of one datagram are held until complete, then compared
// as one datagram, so that two replicas fragmenting the same datagram
// differently (or fragmenting on one side only) still match. The frames that
// leave are the primary's own fragments, as received.
//
// Bounded: at most maxDatagrams in progress per side and maxBytes held;
// overlapping or inconsistent fragments (RFC 5722 for IPv6) drop the datagram.

import { L3_IPV4, L3_IPV6, type PacketView } from '../../packet/packet-view.ts';
import { fillIpv4HeaderChecksum } from '../../packet/checksum.ts';

export const MAX_REASSEMBLIES = 1024;
export const MAX_REASSEMBLY_BYTES = 16 * 1024 * 1024;
/** IP datagrams are at most 65535 bytes (without jumbograms). */
const MAX_DATAGRAM_BYTES = 65535;

interface Piece {
  start: number;
  end: number;
  /** The fragment frame as received (owned copy). */
  frame: Buffer;
  /** Where this fragment's fragmentable payload starts in frame. */
  payloadOffset: number;
}

class Datagram {
  readonly key: string;
  readonly createdMs: number;
  pieces: Piece[] = [];
  /** Total payload length, known once the last fragment (MF = 0) arrived. */
  total = -1;
  bytes = 0;
  first: Piece | null = null;
  /** Unfragmentable header length in the first fragment (through the IPv4 header / up to the IPv6 fragment header). */
  headerEnd = 0;
  /** Offset of the IP header in the first fragment. */
  l3Offset = 0;
  vnetHdrLen = 0;
  v6PrevNh = -1;
  v6NextHeader = 0;
  constructor(key: string, createdMs: number) {
    this.key = key;
    this.createdMs = createdMs;
  }
}

export interface Reassembled {
  /** The whole datagram as one frame (L2 header and vnet header of the first fragment kept). */
  readonly frame: Buffer;
  /** The original fragments in arrival order. */
  readonly fragments: Buffer[];
}

export class FragmentReassembler {
  readonly maxDatagrams: number;
  readonly maxBytes: number;
  #inProgress = new Map<string, Datagram>();
  #bytes = 0;
  /** Fragments discarded: overlap, inconsistency, size, or bounds. Counted by the caller's reason too. */
  dropped = 0;
  completed = 0;

  constructor(maxDatagrams = MAX_REASSEMBLIES, maxBytes = MAX_REASSEMBLY_BYTES) {
    this.maxDatagrams = maxDatagrams;
    this.maxBytes = maxBytes;
  }

  get heldBytes(): number {
    return this.#bytes;
  }

  get inProgress(): number {
    return this.#inProgress.size;
  }

  /** True when the decoded frame is a fragment. */
  static isFragment(v: PacketView): boolean {
    return (v.l3 === L3_IPV4 && (v.ipMf || v.ipFragOffset !== 0)) || (v.l3 === L3_IPV6 && v.ip6HasFragHeader);
  }

  /**
   * Adds one fragment (decoded in v). Returns the reassembled datagram when
   * this fragment completes it, 'held' while incomplete, or 'dropped' (with
   * any fragments of that datagram returned in `dropped` for accounting).
   */
  add(v: PacketView, nowMs: number, dropped: Buffer[]): Reassembled | 'held' | 'dropped' {
    const b = v.buf;
    const n = v.l3 === L3_IPV4 ? 4 : 16;
    let key = `${v.l3}:${v.l3 === L3_IPV4 ? v.ipId : v.ip6FragId}:${v.l3 === L3_IPV4 ? v.ipProto : 0}:`;
    for (let i = 0; i < n; i++) key += `${b[v.ipSrcOffset + i]},${b[v.ipDstOffset + i]},`;
    let d = this.#inProgress.get(key);
    const payloadOffset = v.l3 === L3_IPV4 ? v.l3Offset + v.ipHeaderLen : v.ip6FragHeaderOffset + 8;
    const start = v.ipFragOffset;
    const end = start + (v.ipEnd - payloadOffset);
    const bad = (): 'dropped' => {
      this.dropped++;
      if (d !== undefined) this.#discard(d, dropped);
      return 'dropped';
    };
    if (payloadOffset > v.ipEnd || end > MAX_DATAGRAM_BYTES || v.truncated || (v.ipMf && (end - start) % 8 !== 0)) return bad();
    if (d === undefined) {
      if (this.#inProgress.size >= this.maxDatagrams || this.#bytes + b.length > this.maxBytes) return bad();
      d = new Datagram(key, nowMs);
      d.vnetHdrLen = v.vnetHdrLen;
      this.#inProgress.set(key, d);
    }
    for (const p of d.pieces) if (start < p.end && p.start < end) return bad(); // overlap (RFC 5722)
    if (!v.ipMf) {
      if (d.total >= 0 && d.total !== end) return bad();
      d.total = end;
    }
    if (d.total >= 0 && end > d.total) return bad();
    const copy = Buffer.allocUnsafe(b.length);
    copy.set(b);
    const piece: Piece = { start, end, frame: copy, payloadOffset };
    d.pieces.push(piece);
    d.bytes += copy.length;
    this.#bytes += copy.length;
    if (start === 0) {
      d.first = piece;
      d.l3Offset = v.l3Offset;
      if (v.l3 === L3_IPV6) {
        d.v6PrevNh = v.ip6FragPrevNhOffset;
        d.v6NextHeader = b[v.ip6FragHeaderOffset]!;
        d.headerEnd = v.ip6FragHeaderOffset;
      } else d.headerEnd = payloadOffset;
    }
    if (d.total < 0 || d.first === null) return 'held';
    let covered = 0;
    for (const p of [...d.pieces].sort((x, y) => x.start - y.start)) {
      if (p.start !== covered) return 'held';
      covered = p.end;
    }
    if (covered !== d.total) return 'held';
    this.#inProgress.delete(key);
    this.#bytes -= d.bytes;
    this.completed++;
    return { frame: this.#build(d, v.l3), fragments: d.pieces.map((p) => p.frame) };
  }

  #build(d: Datagram, l3: number): Buffer {
    const first = d.first!;
    const hdr = first.frame.subarray(0, d.headerEnd);
    const out = Buffer.alloc(hdr.length + d.total);
    out.set(hdr, 0);
    for (const p of d.pieces) out.set(p.frame.subarray(p.payloadOffset, p.payloadOffset + (p.end - p.start)), hdr.length + p.start);
    // Fix the IP header: no more fragmentation, the whole length.
    const l3Offset = d.l3Offset;
    if (l3 === L3_IPV4) {
      const total = d.headerEnd - l3Offset + d.total;
      out[l3Offset + 2] = total >> 8;
      out[l3Offset + 3] = total & 0xff;
      out[l3Offset + 6] = out[l3Offset + 6]! & 0x40; // keep DF, clear MF and the offset
      out[l3Offset + 7] = 0;
    } else {
      out[d.v6PrevNh] = d.v6NextHeader;
      const plen = d.headerEnd - l3Offset - 40 + d.total;
      out[l3Offset + 4] = plen >> 8;
      out[l3Offset + 5] = plen & 0xff;
    }
    if (l3 === L3_IPV4) {
      const view = { l3: L3_IPV4, buf: out, l3Offset, ipHeaderLen: d.headerEnd - l3Offset } as unknown as PacketView;
      fillIpv4HeaderChecksum(view);
    }
    return out;
  }

  /** Creation time of the oldest datagram in progress (Infinity when none). */
  oldestMs(): number {
    let m = Infinity;
    for (const d of this.#inProgress.values()) if (d.createdMs < m) m = d.createdMs;
    return m;
  }

  /** Datagrams older than ageMs: their fragments, for the caller to account for. */
  expire(nowMs: number, ageMs: number): Buffer[] {
    const out: Buffer[] = [];
    for (const d of this.#inProgress.values()) if (nowMs - d.createdMs > ageMs) this.#discard(d, out);
    return out;
  }

  /** Everything held, for a checkpoint flush: each fragment with its vnet header length. */
  drain(): { frame: Buffer; vnetHdrLen: number }[] {
    const out: { frame: Buffer; vnetHdrLen: number }[] = [];
    for (const d of this.#inProgress.values()) {
      const frames: Buffer[] = [];
      this.#discard(d, frames);
      for (const frame of frames) out.push({ frame, vnetHdrLen: d.vnetHdrLen });
    }
    return out;
  }

  #discard(d: Datagram, into: Buffer[]): void {
    this.#inProgress.delete(d.key);
    this.#bytes -= d.bytes;
    for (const p of d.pieces) into.push(p.frame);
  }
}
