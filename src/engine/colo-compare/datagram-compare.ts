// Compare for everything but TCP (reference colo-proxy.md §8.5-8.6,
// colo_compare_udp / _icmp / _other): whole packets from the compare offset
// on, same length required. FIFO: the oldest primary is compared first against
// the secondaries in order (upstream pops the newest primary: a bug, see README).

import { firstDifference, rangesEqual } from '../../codec/bytes.ts';
import { KIND_OTHER, type ComparePacket } from './compare-packet.ts';
import type { CompareCore } from './compare-side.ts';
import type { Connection } from './connection-table.ts';
import { compareNormalizedFrames } from './normalizers.ts';

/** -1 when equal from the compare offset on, else the first difference that counts. */
function difference(p: ComparePacket, s: ComparePacket, normalized: boolean, mask: number): number {
  if (normalized) return compareNormalizedFrames(p.view(), s.view(), p.cmpOffset, p.l3Offset, p.ipHeaderLen, p.family, mask);
  return firstDifference(p.buf, p.off + p.cmpOffset, p.off + p.len, s.buf, s.off + p.cmpOffset, s.off + s.len);
}

export function compareDatagrams(core: CompareCore, conn: Connection, nowMs: number): void {
  const pq = conn.primary.queue;
  const sq = conn.secondary.queue;
  const mask = core.normalizerMask;
  while (pq.length > 0 && sq.length > 0) {
    const p = pq.front()!;
    // extended mode compares the IP header of protocols other than TCP/UDP/ICMP, normalized.
    const normalized = !core.qemuMode && p.kind === KIND_OTHER && p.family !== 0;
    const len = p.len - p.cmpOffset;
    let hit: ComparePacket | null = null;
    let at = 0;
    for (; at < sq.length; at++) {
      const s = sq.at(at)!;
      if (s.len !== p.len) continue;
      const same = normalized ? difference(p, s, true, mask) < 0 : rangesEqual(p.buf, p.off + p.cmpOffset, s.buf, s.off + p.cmpOffset, len);
      if (same) {
        hit = s;
        break;
      }
    }
    if (hit === null) {
      const s = sq.front()!;
      const size = s.len !== p.len;
      core.diverged(conn, nowMs, size ? 'size' : 'payload', p, s, difference(p, s, normalized && !size, mask), null);
      return;
    }
    pq.shift();
    sq.removeAt(at);
    core.leave(core.primary, p, 'matched');
    core.leave(core.secondary, hit, 'matched');
  }
}
