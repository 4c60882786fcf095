// The guest as a TCP sender during replay. How a guest cuts its byte stream
// into segments, and where it sets PSH, depends on timing (congestion window,
// ACK arrival, Nagle), so a live upload rarely repeats the recorded segments.
// What must repeat is the byte stream: a live data segment is accepted when
// its bytes equal the recorded guest's bytes at the same sequence numbers,
// and a recorded segment counts as matched once the live guest has sent all
// of it (then the world's recorded ACKs for it may go in). Pure.

import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG } from '../../packet/l4.ts';
import { IPPROTO_TCP, type PacketView } from '../../packet/packet-view.ts';
import { connectionKey } from './flow-mapping.ts';
import { seqAfter } from './tcp-window.ts';

/** Flags that must agree between live and recorded segments; PSH follows timing and is not compared. */
const TCP_STREAM_FLAGS = TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | TCP_URG;

/** A TCP segment that takes sequence space in its sender's stream: data, or a FIN. */
export function isStreamSegment(v: PacketView): boolean {
  return v.ipProto === IPPROTO_TCP && v.srcPort >= 0 && (v.payloadLength > 0 || (v.tcpFlags & TCP_FIN) !== 0);
}
export const GUEST_STREAM_MAX_FLOWS = 4096;

class SendState {
  /** Next sequence number the live guest has not sent yet (recorded space). */
  nxt = 0;
  finSent = false;
}

export type StreamVerdict = 'no' | 'retransmission' | 'accepted';

export class GuestStreams {
  readonly #flows = new Map<string, SendState>();

  /** A live guest frame already judged (a SYN, or a segment that matched exactly): keeps the send position. */
  sent(v: PacketView): void {
    if (v.ipProto !== IPPROTO_TCP || v.srcPort < 0) return;
    const key = connectionKey(v, true);
    if ((v.tcpFlags & TCP_SYN) !== 0) {
      if (this.#flows.size >= GUEST_STREAM_MAX_FLOWS && !this.#flows.has(key)) {
        const oldest = this.#flows.keys().next();
        if (oldest.done !== true) this.#flows.delete(oldest.value);
      }
      const st = new SendState();
      st.nxt = (v.tcpSeq + 1) >>> 0;
      this.#flows.set(key, st);
      return;
    }
    const st = this.#flows.get(key);
    if (st === undefined) return;
    const end = segmentEnd(v);
    if (seqAfter(end, st.nxt)) st.nxt = end;
    if ((v.tcpFlags & TCP_FIN) !== 0) st.finSent = true;
  }

  /**
   * Whether the live guest has sent everything a world frame acknowledges
   * (its ACK, in the guest's recorded sequence space; a FIN counts one).
   * False for a flow this does not follow, or a frame without ACK.
   */
  covers(world: PacketView): boolean {
    if (world.ipProto !== IPPROTO_TCP || world.srcPort < 0 || (world.tcpFlags & TCP_ACK) === 0) return false;
    const st = this.#flows.get(connectionKey(world, false));
    if (st === undefined) return false;
    const sent = st.finSent ? (st.nxt + 1) >>> 0 : st.nxt;
    return !seqAfter(world.tcpAck, sent);
  }

  /**
   * A live data (or FIN) segment that matched no recorded frame as it is:
   * does it continue the recorded byte stream? `recorded` holds the flow's
   * unmatched recorded guest segments (the first `count`); `covered(i)` is
   * called for each one the live guest has now sent all of.
   */
  match(v: PacketView, recorded: readonly PacketView[], count: number, covered: (i: number) => void): StreamVerdict {
    if (!isStreamSegment(v) || (v.tcpFlags & (TCP_SYN | TCP_RST)) !== 0) return 'no';
    const fin = (v.tcpFlags & TCP_FIN) !== 0;
    const st = this.#flows.get(connectionKey(v, true));
    if (st === undefined) return 'no';
    const s = v.tcpSeq;
    const e = (s + v.payloadLength) >>> 0;
    // Everything in it was sent before (a retransmission after a timer ran out): timing, not behaviour.
    if (!seqAfter(e, st.nxt) && (!fin || st.finSent)) return 'retransmission';
    // A gap before it: the guest cannot have skipped bytes.
    if (seqAfter(s, st.nxt)) return 'no';
    // Each byte it shares with a recorded segment must be the same; bytes past st.nxt must all lie in recorded segments.
    let coveredTo = st.nxt;
    for (let i = 0; i < count; i++) {
      const rv = recorded[i]!;
      if ((rv.tcpFlags & TCP_STREAM_FLAGS & ~TCP_FIN) !== (v.tcpFlags & TCP_STREAM_FLAGS & ~TCP_FIN)) continue;
      const rs = rv.tcpSeq;
      const re = (rs + rv.payloadLength) >>> 0;
      // A FIN where the recorded guest still had data to send: a different stream.
      if (fin && seqAfter(re, e)) return 'no';
      const from = seqAfter(rs, s) ? rs : s;
      const to = seqAfter(re, e) ? e : re;
      if (seqAfter(to, from)) {
        const n = (to - from) >>> 0;
        const lo = v.payloadOffset + ((from - s) >>> 0);
        const ro = rv.payloadOffset + ((from - rs) >>> 0);
        for (let i = 0; i < n; i++) if (v.buf[lo + i] !== rv.buf[ro + i]) return 'no';
        if (!seqAfter(from, coveredTo) && seqAfter(to, coveredTo)) coveredTo = to;
      }
    }
    if (seqAfter(e, coveredTo)) return 'no';
    if (seqAfter(e, st.nxt)) st.nxt = e;
    if (fin) st.finSent = true;
    for (let i = 0; i < count; i++) {
      const rv = recorded[i]!;
      if (seqAfter(segmentEnd(rv), st.nxt) || ((rv.tcpFlags & TCP_FIN) !== 0 && !st.finSent)) continue;
      covered(i);
    }
    return 'accepted';
  }
}

/** Sequence number after the segment's data (a FIN is counted separately, by finSent). */
function segmentEnd(v: PacketView): number {
  return (v.tcpSeq + v.payloadLength) >>> 0;
}
