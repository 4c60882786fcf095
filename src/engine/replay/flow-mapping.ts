// What a fresh boot of the same guest chooses differently from the recorded
// run — ephemeral ports, TCP initial sequence numbers and timestamp offsets,
// ICMP echo identifiers — learned from the guest's first packet of a flow and
// applied both ways: guest frames are translated into recorded space before
// comparing, recorded world frames into live space before injecting (with
// checksums recomputed).

import { fillIpv4HeaderChecksum, fillL4Checksum } from '../../packet/checksum.ts';
import { TCP_SYN } from '../../packet/l4.ts';
import { u16be, u32be, w16be, w32be } from '../../codec/bytes.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, L3_IPV4, L3_IPV6, type PacketView } from '../../packet/packet-view.ts';

export interface FlowMapping {
  /** Recorded and live values of the guest-side port (or ICMP id). */
  readonly recPort: number;
  readonly livePort: number;
  /** live ISN − recorded ISN (guest's sequence space), mod 2^32. */
  seqDelta: number;
  /** live TSval − recorded TSval, mod 2^32. */
  tsDelta: number;
  /** The newest world TSval injected on this flow (valid once worldTsvalSeen): see toLive. */
  worldTsval: number;
  worldTsvalSeen: boolean;
  /** World segments whose TSval was raised to it. */
  tsvalRaised: number;
  readonly proto: number;
  /** Text for the report. */
  readonly describe: string;
}

/** An address's bytes as a string of char codes (a map key: no Buffer, no hex per frame). */
function addrBytes(v: PacketView, at: number): string {
  const n = v.l3 === L3_IPV4 ? 4 : 16;
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(v.buf[at + i]!);
  return s;
}

function addrKey(v: PacketView, srcFirst: boolean): string {
  return `${v.ipProto}|${addrBytes(v, srcFirst ? v.ipSrcOffset : v.ipDstOffset)}|${addrBytes(v, srcFirst ? v.ipDstOffset : v.ipSrcOffset)}`;
}

/** The guest-side port of a frame (source for guest frames, destination for world frames); ICMP: echo id. */
export function guestPort(v: PacketView, fromGuest: boolean): number {
  if (v.ipProto === IPPROTO_ICMP || v.ipProto === IPPROTO_ICMPV6) return v.icmpId;
  return fromGuest ? v.srcPort : v.dstPort;
}

/**
 * Key of a UDP socket by the guest's address and port alone: one socket talks
 * to several remote ports (a TFTP server answers from a fresh port, its
 * transfer id, RFC 1350 §4), and the boot's port choice belongs to the socket.
 */
export function udpSocketKey(v: PacketView, fromGuest: boolean, guestSidePort: number): string {
  return `${addrBytes(v, fromGuest ? v.ipSrcOffset : v.ipDstOffset)}|${guestSidePort}`;
}

/** Key of a flow by its guest-side address pair, protocol, remote port and guest-side port value. */
export function flowKey(v: PacketView, fromGuest: boolean, guestSidePort: number): string {
  const remote = v.ipProto === IPPROTO_ICMP || v.ipProto === IPPROTO_ICMPV6 ? 0 : fromGuest ? v.dstPort : v.srcPort;
  return `${addrKey(v, fromGuest)}|${remote}|${guestSidePort}`;
}

/** A frame's flow key with its own guest-side port (the key a guest frame, or a world frame, has in its own space). */
export function connectionKey(v: PacketView, fromGuest: boolean): string {
  return flowKey(v, fromGuest, guestPort(v, fromGuest));
}

/** Offset of a TCP segment's TSval (TSecr at +4), or -1 (decoded with the packet: PacketView.tcpTsOffset). */
export function timestampOffset(v: PacketView): number {
  return v.ipProto === IPPROTO_TCP ? v.tcpTsOffset : -1;
}

/** DHCP (RFC 2131 §2): server port 67, client 68; the xid is at BOOTP offset 4, secs (elapsed time) at 8. */
const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
/** DNS (RFC 1035 §4.1.1): the 16-bit id opens the message. */
const DNS_PORT = 53;

/** Where a transaction id sits in a UDP frame, and how long it is; null when the frame has none we know. */
export function txidField(v: PacketView): { offset: number; length: number; secs: number } | null {
  if (v.ipProto !== IPPROTO_UDP || v.payloadOffset < 0) return null;
  const dhcp = (v.srcPort === DHCP_CLIENT_PORT && v.dstPort === DHCP_SERVER_PORT) || (v.srcPort === DHCP_SERVER_PORT && v.dstPort === DHCP_CLIENT_PORT);
  if (dhcp && v.payloadLength >= 240) return { offset: v.payloadOffset + 4, length: 4, secs: v.payloadOffset + 8 };
  if ((v.dstPort === DNS_PORT || v.srcPort === DNS_PORT) && v.payloadLength >= 12) return { offset: v.payloadOffset, length: 2, secs: -1 };
  return null;
}

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;

/**
 * What one live frame would teach, held until the frame matches: a flow's
 * choices, a transaction id, an echo's data. FlowMappings.commit() applies
 * all of it; a frame that matches nothing leaves no trace (clear()).
 */
export class LearnTxn {
  flow: { readonly mapping: FlowMapping; readonly liveKey: string; readonly recKey: string; readonly udpLive: string | null; readonly udpRec: string | null } | null = null;
  txid: { readonly liveId: string; readonly recId: string } | null = null;
  echo: { readonly key: string; readonly data: Uint8Array } | null = null;

  clear(): void {
    this.flow = null;
    this.txid = null;
    this.echo = null;
  }
}

export class FlowMappings {
  /** By live key (guest frames) and by recorded key (world frames). */
  readonly #byLive = new Map<string, FlowMapping>();
  readonly #byRec = new Map<string, FlowMapping>();
  /** UDP mappings by socket (udpSocketKey), for remote ports the flow did not start with. */
  readonly #udpByLive = new Map<string, FlowMapping>();
  readonly #udpByRec = new Map<string, FlowMapping>();
  readonly learned: FlowMapping[] = [];
  /**
   * ICMP echo data the live guest sent, by recorded (id, seq): an echo reply
   * repeats its request's data by definition (RFC 792, RFC 4443), and pings
   * carry a send time, so injected replies carry the live data.
   */
  readonly #echoData = new Map<string, Uint8Array>();
  echoLearned = 0;
  /** Transaction ids (DHCP xid, DNS id): live ↔ recorded, as hex. */
  readonly #txLiveToRec = new Map<string, string>();
  readonly #txRecToLive = new Map<string, string>();
  txidsLearned = 0;

  /**
   * When the (translated) live frame and the recorded one differ only in a
   * transaction id (and DHCP's elapsed seconds), returns the live frame with
   * the recorded values in place and the pair of ids, without storing them:
   * proposeTxid puts them in a transaction once the whole frame matched.
   */
  candidateTxid(t: PacketView, rec: PacketView): { frame: Uint8Array; liveId: string; recId: string } | null {
    const lf = txidField(t);
    const rf = txidField(rec);
    if (lf === null || rf === null || lf.offset !== rf.offset || t.length !== rec.length) return null;
    const f = Uint8Array.from(t.buf);
    f.set(rec.buf.subarray(rf.offset, rf.offset + rf.length), lf.offset);
    if (lf.secs >= 0) f.set(rec.buf.subarray(rf.secs, rf.secs + 2), lf.secs);
    return {
      frame: f,
      liveId: Buffer.from(t.buf.subarray(lf.offset, lf.offset + lf.length)).toString('hex'),
      recId: Buffer.from(rec.buf.subarray(rf.offset, rf.offset + rf.length)).toString('hex'),
    };
  }

  proposeTxid(txn: LearnTxn, liveId: string, recId: string): void {
    txn.txid = { liveId, recId };
  }

  /** Applies what a matched frame taught. */
  commit(txn: LearnTxn): void {
    const f = txn.flow;
    if (f !== null) {
      this.#byLive.set(f.liveKey, f.mapping);
      this.#byRec.set(f.recKey, f.mapping);
      if (f.udpLive !== null && f.udpRec !== null) {
        this.#udpByLive.set(f.udpLive, f.mapping);
        this.#udpByRec.set(f.udpRec, f.mapping);
      }
      this.learned.push(f.mapping);
    }
    const t = txn.txid;
    if (t !== null) {
      if (!this.#txLiveToRec.has(t.liveId)) this.txidsLearned++;
      this.#txLiveToRec.set(t.liveId, t.recId);
      this.#txRecToLive.set(t.recId, t.liveId);
    }
    const e = txn.echo;
    if (e !== null) {
      this.#echoData.set(e.key, e.data);
      this.echoLearned++;
    }
    txn.clear();
  }

  /** A guest frame with a known live transaction id rewritten to the recorded one (copy), or null. */
  txidToRecorded(t: PacketView): Uint8Array | null {
    const lf = txidField(t);
    if (lf === null) return null;
    const rec = this.#txLiveToRec.get(Buffer.from(t.buf.subarray(lf.offset, lf.offset + lf.length)).toString('hex'));
    if (rec === undefined) return null;
    const f = Uint8Array.from(t.buf);
    f.set(Buffer.from(rec, 'hex'), lf.offset);
    return f;
  }

  static isEchoRequest(v: PacketView): boolean {
    return (v.ipProto === IPPROTO_ICMP && v.icmpType === ICMP_ECHO_REQUEST) || (v.ipProto === IPPROTO_ICMPV6 && v.icmpType === ICMPV6_ECHO_REQUEST);
  }

  /** A live echo request's data (translated frame `t`, recorded id/seq), for the reply: into the transaction. */
  proposeEcho(txn: LearnTxn, t: PacketView): void {
    const b = t.buf;
    txn.echo = { key: `${t.icmpId}|${u16be(b, t.l4Offset + 6)}`, data: Uint8Array.from(b.subarray(t.payloadOffset, t.payloadOffset + t.payloadLength)) };
  }

  /** Whether a live guest frame may start a flow whose choices we learn (SYN, or any UDP/ICMP echo). */
  static learnable(v: PacketView): boolean {
    if (v.l3 !== L3_IPV4 && v.l3 !== L3_IPV6) return false;
    if (v.ipProto === IPPROTO_TCP) return (v.tcpFlags & TCP_SYN) !== 0 && v.srcPort >= 0;
    if (v.ipProto === IPPROTO_UDP) return v.srcPort >= 0;
    return (v.ipProto === IPPROTO_ICMP || v.ipProto === IPPROTO_ICMPV6) && v.icmpId >= 0;
  }

  forLive(v: PacketView): FlowMapping | undefined {
    return this.#find(v, true);
  }

  /** The mapping of a live guest frame (fromGuest) or a recorded world frame: by flow, else (UDP) by socket. */
  #find(v: PacketView, fromGuest: boolean): FlowMapping | undefined {
    const port = guestPort(v, fromGuest);
    const m = (fromGuest ? this.#byLive : this.#byRec).get(flowKey(v, fromGuest, port));
    if (m !== undefined || v.ipProto !== IPPROTO_UDP) return m;
    return (fromGuest ? this.#udpByLive : this.#udpByRec).get(udpSocketKey(v, fromGuest, port));
  }

  /**
   * Proposes what a live guest frame and the recorded frame it stands for
   * teach, when they differ only in learnable values: the mapping goes into
   * the transaction (commit() stores it). Returns it, or null when the two
   * are not the same flow's first packet.
   */
  proposeFlow(txn: LearnTxn, live: PacketView, rec: PacketView): FlowMapping | null {
    if (live.ipProto !== rec.ipProto || live.l3 !== rec.l3 || !FlowMappings.learnable(live) || !FlowMappings.learnable(rec)) return null;
    if (addrKey(live, true) !== addrKey(rec, true)) return null;
    const proto = live.ipProto;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (live.dstPort !== rec.dstPort) return null;
      if (proto === IPPROTO_TCP && (live.tcpFlags & 0x17) !== (rec.tcpFlags & 0x17)) return null;
    }
    const livePort = guestPort(live, true);
    const recPort = guestPort(rec, true);
    let seqDelta = 0;
    let tsDelta = 0;
    if (proto === IPPROTO_TCP) {
      seqDelta = (live.tcpSeq - rec.tcpSeq) >>> 0;
      const lt = timestampOffset(live);
      const rt = timestampOffset(rec);
      if (lt >= 0 && rt >= 0) tsDelta = (u32be(live.buf, lt) - u32be(rec.buf, rt)) >>> 0;
    }
    const m: FlowMapping = {
      recPort,
      livePort,
      seqDelta,
      tsDelta,
      worldTsval: 0,
      worldTsvalSeen: false,
      tsvalRaised: 0,
      proto,
      describe: `${proto === IPPROTO_TCP ? 'tcp' : proto === IPPROTO_UDP ? 'udp' : 'icmp'} ${proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6 ? 'id' : 'port'} ${recPort} → ${livePort}${proto === IPPROTO_TCP ? `, isn +${seqDelta}, tsval +${tsDelta}` : ''}`,
    };
    const udp = proto === IPPROTO_UDP;
    txn.flow = {
      mapping: m,
      liveKey: flowKey(live, true, livePort),
      recKey: flowKey(rec, true, recPort),
      udpLive: udp ? udpSocketKey(live, true, livePort) : null,
      udpRec: udp ? udpSocketKey(rec, true, recPort) : null,
    };
    return m;
  }

  /** A copy of a live frame with the values a fresh boot chooses replaced by the recorded ones (for naming a real difference). */
  withRecordedChoices(live: PacketView, rec: PacketView): Uint8Array {
    const f = Uint8Array.from(live.buf);
    if (live.l4Offset < 0 || rec.l4Offset < 0 || live.ipProto !== rec.ipProto) return f;
    const l4 = live.l4Offset;
    if (live.ipProto === IPPROTO_TCP || live.ipProto === IPPROTO_UDP) w16be(f, l4, rec.srcPort);
    else if (live.icmpId >= 0 && rec.icmpId >= 0) w16be(f, l4 + 4, rec.icmpId);
    if (live.ipProto === IPPROTO_TCP) {
      w32be(f, l4 + 4, rec.tcpSeq);
      const lt = timestampOffset(live);
      const rt = timestampOffset(rec);
      if (lt >= 0 && rt >= 0) w32be(f, lt, u32be(rec.buf, rt));
    }
    return f;
  }

  /** Rewrites a live guest frame (a copy) into recorded space. */
  toRecorded(live: PacketView, m: FlowMapping): Uint8Array {
    const f = Uint8Array.from(live.buf);
    const l4 = live.l4Offset;
    if (m.proto === IPPROTO_TCP || m.proto === IPPROTO_UDP) w16be(f, l4, m.recPort);
    else w16be(f, l4 + 4, m.recPort);
    if (m.proto === IPPROTO_TCP) {
      w32be(f, l4 + 4, (u32be(f, l4 + 4) - m.seqDelta) >>> 0);
      const ts = timestampOffset(live);
      if (ts >= 0) w32be(f, ts, (u32be(f, ts) - m.tsDelta) >>> 0);
    }
    return f;
  }

  /** Rewrites a recorded world frame (a copy) into the live guest's space; recomputes checksums. */
  toLive(rec: PacketView, scratch: PacketView): Uint8Array | null {
    if (rec.l3 !== L3_IPV4 && rec.l3 !== L3_IPV6) return null;
    const m = this.#find(rec, false);
    const isReply = (rec.ipProto === IPPROTO_ICMP && rec.icmpType === ICMP_ECHO_REPLY) || (rec.ipProto === IPPROTO_ICMPV6 && rec.icmpType === ICMPV6_ECHO_REPLY);
    const data = isReply ? this.#echoData.get(`${rec.icmpId}|${u16be(rec.buf, rec.l4Offset + 6)}`) : undefined;
    const tf = txidField(rec);
    const liveTx = tf === null ? undefined : this.#txRecToLive.get(Buffer.from(rec.buf.subarray(tf.offset, tf.offset + tf.length)).toString('hex'));
    if (m === undefined && data === undefined && liveTx === undefined) return null;
    const f = Uint8Array.from(rec.buf);
    if (data !== undefined && data.length === rec.payloadLength) f.set(data, rec.payloadOffset);
    if (tf !== null && liveTx !== undefined) f.set(Buffer.from(liveTx, 'hex'), tf.offset);
    if (m === undefined) {
      const v0 = scratch.decode(f);
      fillL4Checksum(v0);
      return f;
    }
    const l4 = rec.l4Offset;
    if (m.proto === IPPROTO_TCP || m.proto === IPPROTO_UDP) w16be(f, l4 + 2, m.livePort);
    else w16be(f, l4 + 4, m.livePort);
    if (m.proto === IPPROTO_TCP) {
      if (rec.tcpFlags & 0x10) w32be(f, l4 + 8, (u32be(f, l4 + 8) + m.seqDelta) >>> 0);
      const ts = timestampOffset(rec);
      if (ts >= 0) {
        // TSecr echoes the guest's TSval: shift it into the live guest's clock.
        w32be(f, ts + 4, (u32be(f, ts + 4) + m.tsDelta) >>> 0);
        // World segments can go in out of their recorded order (a retransmission that fills a hole goes
        // past segments waiting for the window; the replayer sends lost data again): one with a TSval older
        // than one the guest has taken would be dropped by PAWS (RFC 7323 §5.3), for good. So no TSval goes
        // backwards: an older one is raised to the newest sent on the flow.
        const tsval = u32be(f, ts);
        if (m.worldTsvalSeen && ((tsval - m.worldTsval) | 0) < 0) {
          w32be(f, ts, m.worldTsval);
          m.tsvalRaised++;
        } else {
          m.worldTsval = tsval;
          m.worldTsvalSeen = true;
        }
      }
    }
    const v = scratch.decode(f);
    fillIpv4HeaderChecksum(v);
    fillL4Checksum(v);
    return f;
  }
}

