// World TCP data the live guest has not acknowledged, sent again on its
// behalf. A recorded world never retransmits what its guest acknowledged, but
// a live guest may lose what the recorded one kept: under memory pressure
// Linux prunes its out-of-order queue (tcp_prune_ofo_queue) and reneges on
// what it SACKed, and a frame can die in a slow guest's receive path. Its ACK
// then stays below data that was injected and is in the log: the replayer,
// standing in for the sender, sends those segments again: on a timer (RFC
// 6298: the segment at the ACK point) and on duplicate ACKs (RFC 6675 §5:
// what the SACK scoreboard does not hold, up to the highest SACKed byte).
// A hole the recording itself had (the world's frame never reached the
// recorded guest) is not covered by any injected segment and is left to the
// log's own retransmission.
//
// The guest's ACKs lag what was injected by whatever QEMU and the guest still
// queue, so a duplicate ACK counts only when its SACK blocks reach past what
// had been sent when the segment at the ACK point last went (the RACK idea,
// RFC 8985: data sent later arrived, this did not). Without SACK only the
// timer sends again (RFC 6582's partial ACKs would resend, blindly, segments
// that are only late).
//
// Segments are kept by reference (the engine owns its records' bytes and
// never reuses them), never copied. Pure: time comes in as numbers.

import { u32be } from '../../codec/bytes.ts';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../packet/l4.ts';
import { IPPROTO_TCP, type PacketView } from '../../packet/packet-view.ts';
import { connectionKey } from './flow-mapping.ts';
import { TCP_WINDOW_MAX_FLOWS, seqAfter } from './tcp-window.ts';

/** First retransmission timeout without progress of the live ACK (RFC 6298 §2.1 starts at 1 s). */
export const RETRANSMIT_INITIAL_MS = 1000;
/** Timeouts double without progress up to this (RFC 6298 §5.5 backs off; a replay keeps it short). */
export const RETRANSMIT_MAX_MS = 4000;
/** Duplicate ACKs that mean a segment was lost (RFC 5681 §3.2). */
export const RETRANSMIT_DUP_ACKS = 3;
/** Unacknowledged segments remembered per flow; past it the oldest is forgotten (counted). About 12 MB of full frames. */
export const RETRANSMIT_MAX_SEGMENTS = 8192;
/** Frame bytes remembered over all flows; past it the adding flow forgets its oldest (counted). */
export const RETRANSMIT_MAX_BYTES = 64 * 1024 * 1024;

class Unacked {
  /** Injected data segments in sequence order: the recorded frame, first sequence number, end (exclusive), the flow's sndMax when it was last sent, SACKed. */
  frame: Uint8Array[] = [];
  seq: number[] = [];
  end: number[] = [];
  sentMax: number[] = [];
  sacked: boolean[] = [];
  head = 0;
  /** The highest end injected (RFC 9293's SND.NXT of the recorded world, as far as replay sent it). */
  sndMax = 0;
  /** The live guest's cumulative ACK (recorded space) and when it last moved. */
  ack = 0;
  ackKnown = false;
  progressMs = 0;
  rtoMs = RETRANSMIT_INITIAL_MS;
  dupAcks = 0;
  /** The highest SACKed byte since the last timeout. */
  highSack = 0;
  highSackKnown = false;

  get size(): number {
    return this.frame.length - this.head;
  }

  /** Drops the first segment; returns its bytes. */
  shift(): number {
    const n = this.frame[this.head]!.length;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.frame.length) {
      this.frame = this.frame.slice(this.head);
      this.seq = this.seq.slice(this.head);
      this.end = this.end.slice(this.head);
      this.sentMax = this.sentMax.slice(this.head);
      this.sacked = this.sacked.slice(this.head);
      this.head = 0;
    }
    return n;
  }

  /** The first segment kept covers the guest's ACK point: it was injected and the guest lacks it. */
  get covers(): boolean {
    return this.ackKnown && this.size > 0 && !seqAfter(this.seq[this.head]!, this.ack);
  }

  /** Marks the segments inside [left, right) SACKed (binary search: the ring is in sequence order). */
  markSacked(left: number, right: number): void {
    let lo = this.head;
    let hi = this.frame.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqAfter(left, this.seq[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.frame.length && !seqAfter(this.end[i]!, right); i++) this.sacked[i] = true;
    if (!this.highSackKnown || seqAfter(right, this.highSack)) {
      this.highSack = right;
      this.highSackKnown = true;
    }
  }
}

export class RetransmitStats {
  /** Segments sent again because the live guest lost them. */
  segments = 0;
  /** Rounds triggered by a timeout, and by duplicate ACKs. */
  timeouts = 0;
  fast = 0;
  /** Unacknowledged segments forgotten past RETRANSMIT_MAX_SEGMENTS or RETRANSMIT_MAX_BYTES. */
  forgotten = 0;
}

export class WorldRetransmit {
  readonly stats = new RetransmitStats();
  readonly #flows = new Map<string, Unacked>();
  #bytes = 0;

  /** A world frame (recorded bytes, kept by reference) injected for the first time. */
  injected(v: PacketView, nowMs: number): void {
    if (v.ipProto !== IPPROTO_TCP || v.srcPort < 0) return;
    const key = connectionKey(v, false);
    if ((v.tcpFlags & (TCP_SYN | TCP_RST)) !== 0) {
      // A new or reset connection: what the old one left unacknowledged is moot.
      this.#forget(key);
      if ((v.tcpFlags & TCP_RST) === 0) this.#add(key).sndMax = (v.tcpSeq + 1) >>> 0;
      return;
    }
    const len = v.payloadLength + ((v.tcpFlags & TCP_FIN) !== 0 ? 1 : 0);
    const f = this.#flows.get(key);
    // A flow whose SYN was not seen (the table forgot it) is not tracked.
    if (len === 0 || f === undefined) return;
    const end = (v.tcpSeq + len) >>> 0;
    if (f.ackKnown && !seqAfter(end, f.ack)) return;
    if (seqAfter(end, f.sndMax)) f.sndMax = end;
    if (f.size === 0) {
      f.rtoMs = RETRANSMIT_INITIAL_MS;
      f.progressMs = nowMs;
    }
    while (f.size > 0 && (f.size >= RETRANSMIT_MAX_SEGMENTS || this.#bytes + v.length > RETRANSMIT_MAX_BYTES)) {
      this.#bytes -= f.shift();
      this.stats.forgotten++;
    }
    // In sequence order: a retransmission from the log (filling a hole the recording had) may go in after later data.
    let at = f.frame.length;
    while (at > f.head && seqAfter(f.seq[at - 1]!, v.tcpSeq)) at--;
    // The log sending the same segment again (the world's own retransmission): keep one, sent now.
    if (at > f.head && f.seq[at - 1] === v.tcpSeq && f.end[at - 1] === end) {
      f.sentMax[at - 1] = f.sndMax;
      return;
    }
    this.#bytes += v.length;
    const frame = v.buf.subarray(0, v.length);
    if (at === f.frame.length) {
      f.frame.push(frame);
      f.seq.push(v.tcpSeq);
      f.end.push(end);
      f.sentMax.push(f.sndMax);
      f.sacked.push(false);
    } else {
      f.frame.splice(at, 0, frame);
      f.seq.splice(at, 0, v.tcpSeq);
      f.end.splice(at, 0, end);
      f.sentMax.splice(at, 0, f.sndMax);
      f.sacked.splice(at, 0, false);
    }
  }

  /** A live guest frame in recorded space. Returns whether segments are due again on its flow now (see due()). */
  liveGuest(v: PacketView, nowMs: number): boolean {
    if (v.ipProto !== IPPROTO_TCP || v.srcPort < 0 || (v.tcpFlags & TCP_ACK) === 0) return false;
    const key = connectionKey(v, true);
    const f = this.#flows.get(key);
    if (f === undefined) return false;
    if ((v.tcpFlags & TCP_RST) !== 0) {
      this.#forget(key);
      return false;
    }
    const ack = v.tcpAck;
    // The highest right edge of this ACK's SACK blocks (RFC 2018 §3), and the scoreboard.
    let right = ack;
    for (let i = 0, o = v.tcpSackOffset; i < v.tcpSackBlocks; i++, o += 8) {
      const l = u32be(v.buf, o);
      const r = u32be(v.buf, o + 4);
      if (!seqAfter(r, ack)) continue;
      f.markSacked(l, r);
      if (seqAfter(r, right)) right = r;
    }
    if (!f.ackKnown || seqAfter(ack, f.ack)) {
      f.ack = ack;
      f.ackKnown = true;
      f.progressMs = nowMs;
      f.rtoMs = RETRANSMIT_INITIAL_MS;
      f.dupAcks = 0;
      while (f.size > 0 && !seqAfter(f.end[f.head]!, ack)) this.#bytes -= f.shift();
      return false;
    }
    if (ack !== f.ack || v.payloadLength !== 0 || !f.covers) return false;
    // Evidence of loss: data sent after the segment at the ACK point last went has arrived.
    if (!seqAfter(right, f.sentMax[f.head]!)) return false;
    return ++f.dupAcks === RETRANSMIT_DUP_ACKS;
  }

  /**
   * The recorded frames to send again now, in order: on each flow whose ACK
   * point lies in injected data and that saw duplicate ACKs or no progress
   * for its timeout, the segment at the ACK point and those after
   * it up to the highest SACKed byte that the scoreboard does not hold (after a
   * timeout only the first: the scoreboard is cleared, RFC 6675 §5.1).
   */
  due(nowMs: number, out: Uint8Array[]): void {
    for (const f of this.#flows.values()) {
      if (!f.covers) continue;
      const fast = f.dupAcks >= RETRANSMIT_DUP_ACKS;
      const timeout = nowMs - f.progressMs >= f.rtoMs;
      if (!fast && !timeout) continue;
      if (fast) this.stats.fast++;
      else {
        this.stats.timeouts++;
        f.rtoMs = Math.min(f.rtoMs * 2, RETRANSMIT_MAX_MS);
        // The guest may have reneged (pruned what it SACKed): trust nothing but its cumulative ACK.
        for (let i = f.head; i < f.frame.length; i++) f.sacked[i] = false;
        f.highSackKnown = false;
      }
      f.dupAcks = 0;
      f.progressMs = nowMs;
      for (let i = f.head; i < f.frame.length; i++) {
        if (i > f.head && (!f.highSackKnown || !seqAfter(f.highSack, f.seq[i]!))) break;
        if (i > f.head && f.sacked[i]!) continue;
        out.push(f.frame[i]!);
        f.sentMax[i] = f.sndMax;
        this.stats.segments++;
      }
    }
  }

  /** Segments kept, all flows. */
  get size(): number {
    let n = 0;
    for (const f of this.#flows.values()) n += f.size;
    return n;
  }

  /** Frame bytes kept, all flows. */
  get bytes(): number {
    return this.#bytes;
  }

  #add(key: string): Unacked {
    if (this.#flows.size >= TCP_WINDOW_MAX_FLOWS) {
      const oldest = this.#flows.keys().next();
      if (oldest.done !== true) this.#forget(oldest.value);
    }
    const f = new Unacked();
    this.#flows.set(key, f);
    return f;
  }

  #forget(key: string): void {
    const f = this.#flows.get(key);
    if (f === undefined) return;
    while (f.size > 0) this.#bytes -= f.shift();
    this.#flows.delete(key);
  }
}
