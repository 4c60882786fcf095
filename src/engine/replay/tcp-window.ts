// The guest's TCP receive windows during replay, in recorded (world) sequence
// space. A recorded world never retransmits, so a segment injected beyond what
// the live guest can take is lost for good (RFC 9293 §3.10.7.4: data beyond
// the window is dropped). Each flow keeps two right edges (ACK + window,
// scaled when both SYNs carried the option, RFC 7323 §2.2): the recorded
// guest's, from recorded guest frames as the log is walked, and the live
// guest's, from every live frame. A world segment that ends beyond the live
// edge but within the recorded one waits; one that was beyond the recorded
// edge too (a zero-window probe) never does. Pure: no clock, no I/O.
//
// World sequence numbers are not rewritten during replay (only the guest's
// sequence space is shifted, flow-mapping.ts), so a live guest's ACK is
// directly comparable with a recorded world segment's sequence number.

import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../packet/l4.ts';
import { IPPROTO_TCP, type PacketView } from '../../packet/packet-view.ts';
import { connectionKey } from './flow-mapping.ts';
/** At most this many flows are tracked; the oldest is forgotten past it (a forgotten flow is never held). */
export const TCP_WINDOW_MAX_FLOWS = 4096;

/** a > b in sequence space (RFC 9293 §3.4, modulo 2^32). */
export function seqAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

class FlowWindow {
  /** Shift the guest announced in its SYN, per side; -1 when it announced none. */
  recShift = -1;
  liveShift = -1;
  /** The shift the world's SYN announced, -1 for none: scaling holds only when both SYNs carry it (RFC 7323 §1.3). */
  worldShift = -1;
  recEdge = 0;
  recKnown = false;
  liveEdge = 0;
  liveKnown = false;
}

export type WindowVerdict = 'inject' | 'hold';

export class TcpWindows {
  readonly #flows = new Map<string, FlowWindow>();

  get size(): number {
    return this.#flows.size;
  }

  /** A recorded guest frame, passed in log order. */
  recordedGuest(v: PacketView): void {
    this.#guest(v, false);
  }

  /** A live guest frame, already translated into recorded space (every frame, timing-driven ACKs included). Returns whether the live edge moved. */
  liveGuest(v: PacketView): boolean {
    return this.#guest(v, true);
  }

  #guest(v: PacketView, live: boolean): boolean {
    if (v.ipProto !== IPPROTO_TCP || v.srcPort < 0) return false;
    const key = connectionKey(v, true);
    let f = this.#flows.get(key);
    if ((v.tcpFlags & TCP_SYN) !== 0) {
      // A new connection on this side (the recorded and the live guest reach their SYNs at different times): reset this side only.
      f ??= this.#add(key);
      if (live) {
        f.liveShift = v.tcpWscale;
        f.liveKnown = false;
      } else {
        f.recShift = v.tcpWscale;
        f.recKnown = false;
      }
      // The window of a SYN is never scaled and says nothing about the world's data yet.
      return false;
    }
    if (f === undefined || (v.tcpFlags & TCP_ACK) === 0) return false;
    if ((v.tcpFlags & TCP_RST) !== 0) {
      this.#flows.delete(key);
      return false;
    }
    const own = live ? f.liveShift : f.recShift;
    const shift = f.worldShift >= 0 && own >= 0 ? own : 0;
    const edge = (v.tcpAck + v.tcpWindow * 2 ** shift) >>> 0;
    if (live) {
      if (f.liveKnown && !seqAfter(edge, f.liveEdge)) return false;
      f.liveEdge = edge;
      f.liveKnown = true;
      return true;
    }
    if (!f.recKnown || seqAfter(edge, f.recEdge)) {
      f.recEdge = edge;
      f.recKnown = true;
    }
    return false;
  }

  /** A recorded world frame about to be injected: may it go now? */
  verdict(v: PacketView): WindowVerdict {
    if (v.ipProto !== IPPROTO_TCP || v.srcPort < 0) return 'inject';
    const key = connectionKey(v, false);
    let f = this.#flows.get(key);
    if ((v.tcpFlags & TCP_SYN) !== 0) {
      // The world's SYN (it opened the connection) or SYN-ACK: its scaling option.
      f ??= this.#add(key);
      f.worldShift = v.tcpWscale;
      return 'inject';
    }
    if (f === undefined) return 'inject';
    const len = v.payloadLength + ((v.tcpFlags & TCP_FIN) !== 0 ? 1 : 0);
    if (len === 0 || !f.liveKnown || !f.recKnown) return 'inject';
    const end = (v.tcpSeq + len) >>> 0;
    // Beyond the live edge but within the recorded one: the recorded guest could take it, this one cannot yet.
    return seqAfter(end, f.liveEdge) && !seqAfter(end, f.recEdge) ? 'hold' : 'inject';
  }

  /** A held world frame (it was within the recorded window when held): does it fit the live window now? */
  fitsLive(v: PacketView): boolean {
    const f = this.#flows.get(connectionKey(v, false));
    if (f === undefined || !f.liveKnown) return true;
    const end = (v.tcpSeq + v.payloadLength + ((v.tcpFlags & TCP_FIN) !== 0 ? 1 : 0)) >>> 0;
    return !seqAfter(end, f.liveEdge);
  }

  /** A world frame's flow as the window rule sees it (for reports): both edges and the shifts, or null when untracked. */
  describe(v: PacketView): { liveEdge: number; recEdge: number; liveShift: number; recShift: number; worldShift: number } | null {
    const f = this.#flows.get(connectionKey(v, false));
    return f === undefined ? null : { liveEdge: f.liveEdge, recEdge: f.recEdge, liveShift: f.liveShift, recShift: f.recShift, worldShift: f.worldShift };
  }

  /** The flow key of a world frame, for keeping a held flow's frames in order. */
  static worldKey(v: PacketView): string | null {
    return v.ipProto === IPPROTO_TCP && v.srcPort >= 0 ? connectionKey(v, false) : null;
  }

  #add(key: string): FlowWindow {
    if (this.#flows.size >= TCP_WINDOW_MAX_FLOWS) {
      const oldest = this.#flows.keys().next();
      if (oldest.done !== true) this.#flows.delete(oldest.value);
    }
    const f = new FlowWindow();
    this.#flows.set(key, f);
    return f;
  }
}
