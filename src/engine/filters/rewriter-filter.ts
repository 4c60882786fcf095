// `-f rewriter[,vnet_hdr_support=on]`: QEMU's filter-rewriter (reference
// colo-proxy.md §9, qemu-7.2-observed.md "filter-rewriter, guest-less"), on
// the secondary, on the side that faces the network. The secondary guest
// chose its own TCP initial sequence numbers; the rewriter learns, per
// connection the client opened, offset = secondary ISN − primary ISN and
// shifts ACKs toward the guest (+offset) and SEQs from it (−offset), so the
// secondary's connections survive a failover. A checkpoint zeroes every
// offset (the secondary's TCP state is the primary's again).
//
// This is QEMU's mode (`mode=qemu`), frame for frame, with QEMU's bugs fixed:
// - passive close: the client's last ACK is compared with the guest's FIN in
//   one sequence space (QEMU compares a rewritten ACK with an unrewritten SEQ,
//   so with an offset the connection is never deleted);
// - the checksum is updated where it is, after any IP options (QEMU assumes a
//   20-byte IP header and writes into the TCP flags), and incrementally, so a
//   segment that arrived corrupt is not given a valid checksum;
// - after a bare FIN from the guest, the client's FIN/ACK no longer deletes
//   the connection before the guest's final ACK has been rewritten.
// `mode=extended` goes further (beyond QEMU): connections the guest opens
// (offset learned from the network's SYN/ACK, which acknowledges the
// primary's ISN), IPv6 and VLAN-tagged frames, SACK blocks shifted with the
// ACK, TCP timestamps shifted by a learned clock offset with `ts-offset=on`,
// teardown on both FINs acknowledged or a RST, and a table bounded by LRU
// eviction (counted) instead of QEMU's clear-everything.
// It rewrites in place: a filter that passed the frame on keeps no reference
// to it (the filter contract; a mirror's port copies what it must queue).

import { u32be, w32be } from '../../codec/bytes.ts';
import { updateChecksum32 } from '../../packet/checksum.ts';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../packet/l4.ts';
import { FlowKey, fillFlowKey } from '../../packet/flow-key.ts';
import { type RewriterConnection, RewriterTable, TcpState } from './rewriter-table.ts';
import { IPPROTO_TCP, L3_IPV4, L3_IPV6, LINKTYPE_ETHERNET, PacketView } from '../../packet/packet-view.ts';
import type { CounterTree } from '../counter-tree.ts';
import { type ColoEvent, FILTER_PASS, type Filter, type FilterContext, type FilterDirection, type FilterQueue, type FilterResult } from './filter.ts';

/** QEMU's HASHTABLE_MAX_SIZE: past it connection_get clears the whole table (counted here). */
export const REWRITER_MAX_CONNECTIONS = 16384;


export interface RewriterConfig {
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  /** Accepted for QEMU's command lines; the chain knows each frame's vnet length anyway. */
  readonly vnetHdr: boolean;
  /** `qemu`: QEMU's behaviour, its bugs fixed; `extended`: see the top of this file. */
  readonly mode: 'qemu' | 'extended';
  /** extended: shift TCP timestamps by the secondary's clock offset. */
  readonly tsOffset: boolean;
}

export { TcpState } from './rewriter-table.ts';

export class RewriterCounters {
  /** TCP frames seen (both directions). */
  tcp = 0;
  /** Frames from the network whose ACK was shifted. */
  ackRewritten = 0;
  /** Frames from the guest whose SEQ was shifted. */
  seqRewritten = 0;
  /** Not IPv4 TCP as QEMU parses it (ARP, IPv6, 802.1Q, runts, other protocols): passed untouched. */
  passedOther = 0;
  /** After failover: frames of connections not tracked before it, passed untouched. */
  passedFailover = 0;
  connectionsCreated = 0;
  connectionsClosed = 0;
  /** Times the table passed its bound and was cleared whole, as QEMU does (offsets lost). */
  tableResets = 0;
  checkpoints = 0;
  /** extended: connections the guest opened (QEMU leaves them unrewritten). */
  guestOpened = 0;
  /** extended: frames whose SACK blocks were shifted with the ACK. */
  sackRewritten = 0;
  /** extended, ts-offset=on: frames whose TSval or TSecr was shifted. */
  tsRewritten = 0;
  /** extended: least recently used connections evicted at the table's bound (their offsets lost). */
  evicted = 0;
  /** extended: connections ended by a RST. */
  connectionsReset = 0;
}

export class RewriterFilter implements Filter {
  readonly kind = 'rewriter';
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly config: RewriterConfig;
  readonly commands = {};
  readonly counters = new RewriterCounters();
  /** QEMU's failover mode: connections not tracked before failover are left alone. */
  failoverMode = false;
  readonly maxConnections: number;
  #ctx: FilterContext;
  readonly #table: RewriterTable;
  readonly #extended: boolean;
  readonly #view = new PacketView();
  readonly #key = new FlowKey();

  constructor(config: RewriterConfig, ctx: FilterContext, maxConnections = REWRITER_MAX_CONNECTIONS) {
    this.config = config;
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.#ctx = ctx;
    this.maxConnections = maxConnections;
    this.#extended = config.mode === 'extended';
    this.#table = new RewriterTable(maxConnections, this.#extended);
  }

  get connections(): number {
    return this.#table.size;
  }

  /** The tracked connection of this frame's flow, if any (for tests and status). */
  connectionOf(frame: Uint8Array, vnetHdrLen = 0): { state: TcpState; offset: number } | null {
    const v = this.#view.decode(frame, LINKTYPE_ETHERNET, vnetHdrLen);
    if (!fillFlowKey(v, this.#key)) return null;
    const c = this.#table.find(this.#key);
    return c === null ? null : { state: c.state, offset: c.offset };
  }

  receive(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number): FilterResult {
    const v = this.#view.decode(frame, LINKTYPE_ETHERNET, vnetHdrLen);
    const c = this.counters;
    if (!this.#handles(v, frame) || !fillFlowKey(v, this.#key)) {
      c.passedOther++;
      return FILTER_PASS;
    }
    c.tcp++;
    let conn = this.#table.find(this.#key);
    if (conn === null) {
      if (this.failoverMode) {
        c.passedFailover++;
        return FILTER_PASS;
      }
      conn = this.#create(this.#key);
    } else this.#table.touch(conn);
    if (this.#extended) {
      if (dir === 'tx') this.#extFromNetwork(conn, v, frame);
      else this.#extFromGuest(conn, v, frame);
      return FILTER_PASS;
    }
    const shift = dir === 'tx' ? this.#fromNetwork(conn, v.tcpFlags, v.tcpAck) : this.#fromGuest(conn, v.tcpFlags, v.tcpSeq);
    if (shift === null) return FILTER_PASS;
    w32be(frame, v.l4Offset + (dir === 'tx' ? 8 : 4), shift);
    // Incrementally (RFC 1624), not from scratch as QEMU: a segment corrupted on its way in stays
    // detectably corrupt instead of reaching the guest with a freshly valid checksum, and a
    // full-size segment costs O(1) instead of a sum over 1460 bytes (bench/chain.ts).
    updateChecksum32(frame, v.l4Offset + 16, dir === 'tx' ? v.tcpAck : v.tcpSeq, shift);
    if (dir === 'tx') c.ackRewritten++;
    else c.seqRewritten++;
    return FILTER_PASS;
  }

  /** Whether this mode rewrites the frame's protocol at all (others pass untouched, counted). */
  #handles(v: PacketView, frame: Uint8Array): boolean {
    if (v.ipProto !== IPPROTO_TCP || v.l4Offset < 0 || v.l4Offset + 20 > frame.length || v.ipFragOffset !== 0) return false;
    // extended: IPv4 or IPv6, tagged or not, and not the first fragment either.
    if (this.#extended) return (v.l3 === L3_IPV4 || v.l3 === L3_IPV6) && !v.ipMf;
    // parse_packet_early: IPv4 only, 802.1Q refused (802.1ad is not, as in QEMU), the IP header whole.
    return v.l3 === L3_IPV4 && !(v.vlanCount > 0 && v.vlanTpid[0] === 0x8100);
  }

  /**
   * handle_primary_tcp_pkt: a frame from the network (the client) toward the
   * guest. Returns the new ACK when the frame is to be rewritten, else null.
   */
  #fromNetwork(conn: RewriterConnection, flags: number, ack: number): number | null {
    const synAck = flags & (TCP_ACK | TCP_SYN);
    if (synAck === (TCP_ACK | TCP_SYN) && conn.state === TcpState.SynSent) conn.state = TcpState.Established;
    if (synAck === TCP_SYN) conn.state = TcpState.SynReceived;
    let out: number | null = null;
    let deleted = false;
    if (synAck === TCP_ACK) {
      if (conn.state === TcpState.SynReceived) {
        // offset held the secondary ISN; the client's first ACK acknowledges the primary ISN + 1.
        conn.offset = (conn.offset - (ack - 1)) >>> 0;
        conn.state = TcpState.Established;
      }
      if (conn.offset !== 0) out = (ack + conn.offset) >>> 0;
      // Passive close, step 3, in the primary's space (QEMU compares the rewritten ACK: its bug 1).
      if (conn.state === TcpState.LastAck && ack === ((conn.finAckSeq + 1) >>> 0)) {
        this.#delete(conn);
        deleted = true;
      }
    }
    if ((flags & TCP_FIN) !== 0 && !deleted) {
      if (conn.state === TcpState.Established) conn.state = TcpState.CloseWait;
      // Active close: QEMU deletes here, before the guest's final ACK, which then leaves unrewritten.
      else if (conn.state === TcpState.FinWait1) conn.state = TcpState.TimeWait;
    }
    return out;
  }

  /** handle_secondary_tcp_pkt: a frame from the guest. Returns the new SEQ when it is to be rewritten, else null. */
  #fromGuest(conn: RewriterConnection, flags: number, seq: number): number | null {
    const synAck = flags & (TCP_ACK | TCP_SYN);
    if (conn.state === TcpState.SynReceived && synAck === (TCP_ACK | TCP_SYN)) conn.offset = seq;
    if (conn.state === TcpState.Closed && synAck === TCP_SYN) conn.state = TcpState.SynSent;
    let out: number | null = null;
    if (synAck === TCP_ACK && conn.offset !== 0) out = (seq - conn.offset) >>> 0;
    if (conn.state === TcpState.CloseWait && (flags & (TCP_ACK | TCP_FIN)) === (TCP_ACK | TCP_FIN)) {
      conn.finAckSeq = out ?? seq;
      conn.state = TcpState.LastAck;
    }
    if (conn.state === TcpState.Established && (flags & (TCP_ACK | TCP_FIN)) === TCP_FIN) conn.state = TcpState.FinWait1;
    // The guest's final ACK after the client's FIN: rewritten above, now the connection can go.
    else if (conn.state === TcpState.TimeWait && synAck === TCP_ACK && (flags & TCP_FIN) === 0) this.#delete(conn);
    return out;
  }

  /** extended: a frame from the network toward the guest. */
  #extFromNetwork(conn: RewriterConnection, v: PacketView, frame: Uint8Array): void {
    const f = v.tcpFlags;
    const synAck = f & (TCP_SYN | TCP_ACK);
    if (synAck === TCP_SYN) {
      // The client opens: the guest's SYN/ACK and the client's first ACK will teach the offsets.
      this.#resetConn(conn, TcpState.SynReceived);
    } else if (synAck === (TCP_SYN | TCP_ACK) && conn.state === TcpState.SynSent) {
      // The guest opened: this SYN/ACK acknowledges the primary's ISN (netrr, beyond QEMU).
      this.#learn(conn, v);
      this.counters.guestOpened++;
    } else if (synAck === TCP_ACK && conn.state === TcpState.SynReceived) {
      this.#learn(conn, v);
    }
    const ack = v.tcpAck;
    if ((f & TCP_ACK) !== 0) {
      if (conn.offset !== 0) {
        const shifted = (ack + conn.offset) >>> 0;
        w32be(frame, v.l4Offset + 8, shifted);
        updateChecksum32(frame, v.l4Offset + 16, ack, shifted);
        this.counters.ackRewritten++;
        // SACK blocks acknowledge the guest's sequence space too (RFC 2018 §3).
        if (v.tcpSackOffset >= 0) {
          for (let i = 0; i < v.tcpSackBlocks * 2; i++) this.#shiftWord(frame, v, v.tcpSackOffset + 4 * i, conn.offset);
          this.counters.sackRewritten++;
        }
      }
      // TSecr echoes the primary's clock; the secondary expects its own.
      if (conn.tsOffset !== 0 && v.tcpTsOffset >= 0) {
        this.#shiftWord(frame, v, v.tcpTsOffset + 4, conn.tsOffset);
        this.counters.tsRewritten++;
      }
      if (conn.guestFinEnd >= 0 && ack === conn.guestFinEnd) conn.guestFinAcked = true;
    }
    if ((f & TCP_FIN) !== 0) conn.netFinEnd = (v.tcpSeq + v.payloadLength + 1) >>> 0;
    this.#maybeClose(conn, f);
  }

  /** extended: a frame from the guest. */
  #extFromGuest(conn: RewriterConnection, v: PacketView, frame: Uint8Array): void {
    const f = v.tcpFlags;
    const synAck = f & (TCP_SYN | TCP_ACK);
    if (synAck === TCP_SYN) {
      this.#resetConn(conn, TcpState.SynSent);
      conn.guestIsn = v.tcpSeq;
      conn.guestTsVal = v.tcpTsOffset >= 0 ? v.tcpTsVal : -1;
    } else if (synAck === (TCP_SYN | TCP_ACK) && conn.state === TcpState.SynReceived) {
      conn.guestIsn = v.tcpSeq;
      conn.guestTsVal = v.tcpTsOffset >= 0 ? v.tcpTsVal : -1;
    }
    const seq = v.tcpSeq;
    let primarySeq = seq;
    if ((f & TCP_ACK) !== 0 && conn.offset !== 0) {
      primarySeq = (seq - conn.offset) >>> 0;
      w32be(frame, v.l4Offset + 4, primarySeq);
      updateChecksum32(frame, v.l4Offset + 16, seq, primarySeq);
      this.counters.seqRewritten++;
    }
    if (conn.tsOffset !== 0 && v.tcpTsOffset >= 0) {
      this.#shiftWord(frame, v, v.tcpTsOffset, -conn.tsOffset);
      this.counters.tsRewritten++;
    }
    if ((f & TCP_FIN) !== 0) conn.guestFinEnd = (primarySeq + v.payloadLength + 1) >>> 0;
    if ((f & TCP_ACK) !== 0 && conn.netFinEnd >= 0 && v.tcpAck === conn.netFinEnd) conn.netFinAcked = true;
    this.#maybeClose(conn, f);
  }

  /** The offsets, from the frame that acknowledges the primary's ISN (and echoes its SYN's TSval). */
  #learn(conn: RewriterConnection, v: PacketView): void {
    conn.offset = (conn.guestIsn - (v.tcpAck - 1)) >>> 0;
    if (this.config.tsOffset && conn.guestTsVal >= 0 && v.tcpTsOffset >= 0) conn.tsOffset = (conn.guestTsVal - v.tcpTsEcr) >>> 0;
    conn.state = TcpState.Established;
  }

  #resetConn(conn: RewriterConnection, state: TcpState): void {
    conn.state = state;
    conn.offset = 0;
    conn.tsOffset = 0;
    conn.guestIsn = 0;
    conn.guestTsVal = -1;
    conn.guestFinEnd = -1;
    conn.netFinEnd = -1;
    conn.guestFinAcked = false;
    conn.netFinAcked = false;
  }

  /** Ends a connection once both FINs were acknowledged (after the final ACK was rewritten), or at a RST. */
  #maybeClose(conn: RewriterConnection, flags: number): void {
    if ((flags & TCP_RST) !== 0) {
      this.counters.connectionsReset++;
      this.#delete(conn);
    } else if (conn.guestFinAcked && conn.netFinAcked) this.#delete(conn);
  }

  /** Adds delta (mod 2^32) to the 32-bit field at `at`, updating the TCP checksum incrementally. */
  #shiftWord(frame: Uint8Array, v: PacketView, at: number, delta: number): void {
    const old = u32be(frame, at);
    const now = (old + delta) >>> 0;
    w32be(frame, at, now);
    updateChecksum32(frame, v.l4Offset + 16, old, now);
  }

  #create(key: FlowKey): RewriterConnection {
    const { conn, made } = this.#table.create(key);
    if (made === 'evicted') this.counters.evicted++;
    else if (made === 'reset') {
      this.counters.tableResets++;
      this.#ctx.emit('REWRITER_TABLE_RESET', { filter: this.id, connections: this.maxConnections });
    }
    this.counters.connectionsCreated++;
    return conn;
  }

  #delete(conn: RewriterConnection): void {
    if (this.#table.delete(conn)) this.counters.connectionsClosed++;
  }

  /** QEMU's event handler (the rewriter keeps status=on across failover). */
  colo(event: ColoEvent): void {
    if (event === 'checkpoint') {
      this.counters.checkpoints++;
      for (const conn of this.#table) {
        conn.offset = 0;
        conn.tsOffset = 0;
      }
      return;
    }
    // Failover mode only if no connection still needs its offset; otherwise rewriting goes on for all.
    for (const conn of this.#table) if (conn.offset !== 0 || conn.tsOffset !== 0) return;
    this.failoverMode = true;
  }

  counterTree(): CounterTree {
    return { ...this.counters, connections: this.#table.size, failoverMode: this.failoverMode ? 1 : 0 };
  }

  report(): Record<string, unknown> {
    return { id: this.id, kind: this.kind, queue: this.queue, status: this.status ? 'on' : 'off', mode: this.config.mode, ...(this.#extended ? { tsOffset: this.config.tsOffset } : {}), vnetHdr: this.config.vnetHdr, failoverMode: this.failoverMode, connections: this.#table.size, ...this.counters };
  }
}
