// TCP compare (reference colo-proxy.md §8.4, colo_compare_tcp and
// colo_mark_tcp_pkt): each side's queue is in sequence order and the lowest
// segments of the two are compared, payload only. A segment whose data the
// other side covers in part is matched in part (its offset moves on), so two
// replicas that cut the same byte stream into different segments still match.

import { firstDifference, rangesEqual } from '../../codec/bytes.ts';
import type { ComparePacket } from './compare-packet.ts';
import type { CompareCore } from './compare-side.ts';
import type { Connection } from './connection-table.ts';
import { tcpHeaderDifference } from './normalizers.ts';

/** (int32)(a - b) > 0: a is after b in sequence space. */
export function seqAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** What comparing the two lowest segments decided. */
export const MARK_PRIMARY = 1;
export const MARK_SECONDARY = 2;
export const MARK_BOTH = 3;
export const MISS_PAYLOAD = 4;
/** The data matches but the primary acknowledges what the secondary has not yet. */
export const MISS_ACK = 5;
/** Same segment, but the (normalized) TCP headers differ. */
export const MISS_HEADER = 6;
export type Mark = 1 | 2 | 3 | 4 | 5 | 6;

/** A compared range of a's payload against b's, bounds-checked where QEMU's memcmp would read past a shorter segment. */
function payloadEqual(a: ComparePacket, b: ComparePacket, len: number): boolean {
  return rangesEqual(a.buf, a.off + a.headerSize + a.offset, b.buf, b.off + b.headerSize + b.offset, len);
}

// colo_mark_tcp_pkt
export function markTcp(p: ComparePacket, s: ComparePacket, maxAck: number, extended: boolean, mask: number): Mark {
  if (p.tcpSeq === s.tcpSeq && p.seqEnd === s.seqEnd && rangesEqual(p.buf, p.off + p.headerSize, s.buf, s.off + s.headerSize, p.payloadSize)) {
    // Same segment on both sides: extended mode also compares what the headers say (normalized).
    if (extended && tcpHeaderDifference(p.buf, p.off + p.l4Offset, s.buf, s.off + s.l4Offset, mask) !== null) return MISS_HEADER;
    return MARK_BOTH;
  }
  if (!seqAfter(p.seqEnd, s.seqEnd)) {
    const len = p.payloadSize - p.offset;
    if (!payloadEqual(p, s, len)) return MISS_PAYLOAD;
    if (seqAfter(p.tcpAck, maxAck)) return MISS_ACK;
    s.offset += len;
    return MARK_PRIMARY;
  }
  const len = s.payloadSize - s.offset;
  if (!payloadEqual(p, s, len)) return MISS_PAYLOAD;
  p.offset += len;
  return MARK_SECONDARY;
}

/** Compares the connection's queues as far as they go; a miss reports the divergence and stops. */
export function compareTcp(core: CompareCore, conn: Connection, nowMs: number): void {
  const qemu = core.qemuMode;
  const pa = conn.primary.ack;
  const sa = conn.secondary.ack;
  const minAck = qemu ? Math.min(pa, sa) : seqAfter(pa, sa) ? sa : pa;
  const pq = conn.primary.queue;
  const sq = conn.secondary.queue;
  const P = core.primary;
  const S = core.secondary;
  for (;;) {
    // QEMU compares only while both queues hold a packet: a lone SYN or pure ACK waits too.
    const p = pq.front();
    const s = sq.front();
    if (p === undefined || s === undefined) return;
    // Segments that need no compare leave first, both sides in the same round as QEMU's loop.
    let settled = false;
    if (p.tcpSeq === p.seqEnd) {
      pq.shift();
      core.leave(P, p, 'noPayload');
      settled = true;
    } else if (conn.compareSeq !== 0 && !seqAfter(p.seqEnd, conn.compareSeq)) {
      pq.shift();
      core.leave(P, p, 'alreadyCompared');
      settled = true;
    }
    if (s.tcpSeq === s.seqEnd) {
      sq.shift();
      core.leave(S, s, 'noPayload');
      settled = true;
    } else if (conn.compareSeq !== 0 && !seqAfter(s.seqEnd, conn.compareSeq)) {
      sq.shift();
      core.leave(S, s, 'alreadyCompared');
      settled = true;
    }
    if (settled) continue;
    const mark = markTcp(p, s, minAck, !qemu, core.normalizerMask);
    if (mark === MARK_BOTH) {
      conn.compareSeq = p.seqEnd;
      pq.shift();
      core.leave(P, p, 'matched');
      sq.shift();
      core.leave(S, s, 'matched');
    } else if (mark === MARK_PRIMARY) {
      conn.compareSeq = p.seqEnd;
      pq.shift();
      core.leave(P, p, 'matched');
    } else if (mark === MARK_SECONDARY) {
      conn.compareSeq = s.seqEnd;
      sq.shift();
      core.leave(S, s, 'matched');
    } else {
      const at = p.off + p.headerSize + p.offset;
      const bt = s.off + s.headerSize + s.offset;
      const diff = firstDifference(p.buf, at, p.off + p.len, s.buf, bt, s.off + s.len);
      const field = mark === MISS_HEADER ? tcpHeaderDifference(p.buf, p.off + p.l4Offset, s.buf, s.off + s.l4Offset, core.normalizerMask) : null;
      core.diverged(conn, nowMs, mark === MISS_ACK ? 'ack' : mark === MISS_HEADER ? 'header' : 'payload', p, s, diff, field);
      return;
    }
  }
}
