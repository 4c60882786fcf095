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
// It rewrites in place: a filter that passed the frame on keeps no reference
// to it (the filter contract; a mirror's port copies what it must queue).

import { w32be } from '../../codec/bytes.ts';
import { updateChecksum32 } from '../../packet/checksum.ts';
import { FlowKey, fillFlowKey } from '../../packet/flow-key.ts';
import { IPPROTO_TCP, L3_IPV4, LINKTYPE_ETHERNET, PacketView } from '../../packet/packet-view.ts';
import type { CounterTree } from '../counter-tree.ts';
import { type ColoEvent, FILTER_PASS, type Filter, type FilterContext, type FilterDirection, type FilterQueue, type FilterResult } from './filter.ts';

/** QEMU's HASHTABLE_MAX_SIZE: past it connection_get clears the whole table (counted here). */
export const REWRITER_MAX_CONNECTIONS = 16384;

const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_ACK = 0x10;

/** TCP states the rewriter tracks (QEMU's TCPS_* subset). */
export const TcpState = {
  Closed: 0,
  SynSent: 1,
  SynReceived: 2,
  Established: 3,
  CloseWait: 4,
  LastAck: 5,
  FinWait1: 6,
  /** netrr: the client acknowledged a bare FIN from the guest; the guest's final ACK is still to come. */
  TimeWait: 7,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export interface RewriterConfig {
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  /** Accepted for QEMU's command lines; the chain knows each frame's vnet length anyway. */
  readonly vnetHdr: boolean;
}

class RewriterConnection {
  readonly key: FlowKey;
  state: TcpState = TcpState.Closed;
  /** secondary ISN − primary ISN, mod 2^32 (while SYN_RECEIVED: the secondary ISN). */
  offset = 0;
  /** The guest's FIN/ACK sequence number, in the primary's space. */
  finAckSeq = 0;

  constructor(key: FlowKey) {
    this.key = new FlowKey().copyFrom(key);
  }
}

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
  #table = new Map<number, RewriterConnection[]>();
  #size = 0;
  readonly #view = new PacketView();
  readonly #key = new FlowKey();

  constructor(config: RewriterConfig, ctx: FilterContext, maxConnections = REWRITER_MAX_CONNECTIONS) {
    this.config = config;
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.#ctx = ctx;
    this.maxConnections = maxConnections;
  }

  get connections(): number {
    return this.#size;
  }

  /** The tracked connection of this frame's flow, if any (for tests and status). */
  connectionOf(frame: Uint8Array, vnetHdrLen = 0): { state: TcpState; offset: number } | null {
    const v = this.#view.decode(frame, LINKTYPE_ETHERNET, vnetHdrLen);
    if (!fillFlowKey(v, this.#key)) return null;
    const c = this.#find(this.#key);
    return c === null ? null : { state: c.state, offset: c.offset };
  }

  receive(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number): FilterResult {
    const v = this.#view.decode(frame, LINKTYPE_ETHERNET, vnetHdrLen);
    const c = this.counters;
    // parse_packet_early: IPv4 only, 802.1Q refused (802.1ad is not, as in QEMU), the IP header whole.
    if (v.l3 !== L3_IPV4 || v.ipProto !== IPPROTO_TCP || (v.vlanCount > 0 && v.vlanTpid[0] === 0x8100) || v.l4Offset < 0 || v.l4Offset + 20 > frame.length || v.ipFragOffset !== 0) {
      c.passedOther++;
      return FILTER_PASS;
    }
    if (!fillFlowKey(v, this.#key)) {
      c.passedOther++;
      return FILTER_PASS;
    }
    c.tcp++;
    let conn = this.#find(this.#key);
    if (conn === null) {
      if (this.failoverMode) {
        c.passedFailover++;
        return FILTER_PASS;
      }
      conn = this.#create(this.#key);
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

  /**
   * handle_primary_tcp_pkt: a frame from the network (the client) toward the
   * guest. Returns the new ACK when the frame is to be rewritten, else null.
   */
  #fromNetwork(conn: RewriterConnection, flags: number, ack: number): number | null {
    const synAck = flags & (TH_ACK | TH_SYN);
    if (synAck === (TH_ACK | TH_SYN) && conn.state === TcpState.SynSent) conn.state = TcpState.Established;
    if (synAck === TH_SYN) conn.state = TcpState.SynReceived;
    let out: number | null = null;
    let deleted = false;
    if (synAck === TH_ACK) {
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
    if ((flags & TH_FIN) !== 0 && !deleted) {
      if (conn.state === TcpState.Established) conn.state = TcpState.CloseWait;
      // Active close: QEMU deletes here, before the guest's final ACK, which then leaves unrewritten.
      else if (conn.state === TcpState.FinWait1) conn.state = TcpState.TimeWait;
    }
    return out;
  }

  /** handle_secondary_tcp_pkt: a frame from the guest. Returns the new SEQ when it is to be rewritten, else null. */
  #fromGuest(conn: RewriterConnection, flags: number, seq: number): number | null {
    const synAck = flags & (TH_ACK | TH_SYN);
    if (conn.state === TcpState.SynReceived && synAck === (TH_ACK | TH_SYN)) conn.offset = seq;
    if (conn.state === TcpState.Closed && synAck === TH_SYN) conn.state = TcpState.SynSent;
    let out: number | null = null;
    if (synAck === TH_ACK && conn.offset !== 0) out = (seq - conn.offset) >>> 0;
    if (conn.state === TcpState.CloseWait && (flags & (TH_ACK | TH_FIN)) === (TH_ACK | TH_FIN)) {
      conn.finAckSeq = out ?? seq;
      conn.state = TcpState.LastAck;
    }
    if (conn.state === TcpState.Established && (flags & (TH_ACK | TH_FIN)) === TH_FIN) conn.state = TcpState.FinWait1;
    // The guest's final ACK after the client's FIN: rewritten above, now the connection can go.
    else if (conn.state === TcpState.TimeWait && synAck === TH_ACK && (flags & TH_FIN) === 0) this.#delete(conn);
    return out;
  }

  #find(key: FlowKey): RewriterConnection | null {
    const list = this.#table.get(key.hash);
    if (list === undefined) return null;
    for (let i = 0; i < list.length; i++) if (list[i]!.key.equals(key)) return list[i]!;
    return null;
  }

  #create(key: FlowKey): RewriterConnection {
    if (this.#size >= this.maxConnections) {
      // connection_get: past HASHTABLE_MAX_SIZE the table is cleared whole (reference colo-proxy.md §7).
      this.#table.clear();
      this.#size = 0;
      this.counters.tableResets++;
      this.#ctx.emit('REWRITER_TABLE_RESET', { filter: this.id, connections: this.maxConnections });
    }
    const conn = new RewriterConnection(key);
    const list = this.#table.get(key.hash);
    if (list === undefined) this.#table.set(key.hash, [conn]);
    else list.push(conn);
    this.#size++;
    this.counters.connectionsCreated++;
    return conn;
  }

  #delete(conn: RewriterConnection): void {
    const list = this.#table.get(conn.key.hash);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.#table.delete(conn.key.hash);
    this.#size--;
    conn.state = TcpState.Closed;
    this.counters.connectionsClosed++;
  }

  /** QEMU's event handler (the rewriter keeps status=on across failover). */
  colo(event: ColoEvent): void {
    if (event === 'checkpoint') {
      this.counters.checkpoints++;
      for (const list of this.#table.values()) for (const conn of list) conn.offset = 0;
      return;
    }
    // Failover mode only if no connection still needs its offset; otherwise rewriting goes on for all.
    for (const list of this.#table.values()) for (const conn of list) if (conn.offset !== 0) return;
    this.failoverMode = true;
  }

  counterTree(): CounterTree {
    return { ...this.counters, connections: this.#size, failoverMode: this.failoverMode ? 1 : 0 };
  }

  report(): Record<string, unknown> {
    return { id: this.id, kind: this.kind, queue: this.queue, status: this.status ? 'on' : 'off', mode: 'qemu', vnetHdr: this.config.vnetHdr, failoverMode: this.failoverMode, connections: this.#size, ...this.counters };
  }
}
