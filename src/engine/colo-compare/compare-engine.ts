// The COLO compare engine: pure, driven by frames and an injected clock.
// Primary and secondary output go in; primary frames that the secondary
// matches come out (release); a divergence becomes a checkpoint request.
//
// --mode qemu reproduces colo-compare's observable behaviour (reference
// colo-proxy.md §8) except where that behaviour is a bug (see README):
// FIFO compare and release for UDP/ICMP/other, release in arrival order at a
// checkpoint, bounded LRU eviction instead of a table reset, requests that
// coalesce until the checkpoint is done.
//
// Both replicas are a CompareSide, built twice; one input path serves both.
// A frame is compared on arrival as the caller's own bytes and copied into
// the packet store only if it has to wait for the other side.

import { u32be } from '../../codec/bytes.ts';
import { NetrrError } from '../../errors.ts';
import { PacketView } from '../../packet/packet-view.ts';
import { type BypassRule, matchBypass } from './bypass-rules.ts';
import type { CheckpointCause, CheckpointRequest, CompareConfig, CompareSink, Divergence, DivergentFrame } from './compare-config.ts';
import { CompareCounters } from './compare-counters.ts';
import { ComparePacket, ConnKey, KIND_ARP, KIND_ICMP, KIND_TCP, KIND_UDP, KIND_UNSUPPORTED, type PacketKind, classifyExtended, classifyQemu } from './compare-packet.ts';
import { type CompareCore, CompareSide, type DropReason, type LeaveReason } from './compare-side.ts';
import { type Connection, ConnectionTable } from './connection-table.ts';
import { compareDatagrams } from './datagram-compare.ts';
import { FragmentReassembler } from './fragment-reassembly.ts';
import { normalizerMask } from './normalizers.ts';
import { PacketStore, STORE_SLAB_BYTES, STORE_SPARSE_FRACTION } from './packet-store.ts';
import { compareTcp, seqAfter } from './tcp-compare.ts';

export * from './compare-config.ts';

export class CompareEngine implements CompareCore {
  readonly config: CompareConfig;
  readonly counters = new CompareCounters();
  readonly table: ConnectionTable;
  readonly primary: CompareSide;
  readonly secondary: CompareSide;
  readonly qemuMode: boolean;
  readonly normalizerMask: number;
  readonly store = new PacketStore();
  #sink: CompareSink;
  #key = new ConnKey();
  #view = new PacketView();
  #arrival = 0;
  #queuedBytes = 0;
  #pending: CheckpointRequest | null = null;
  #failover = false;
  /** Time of the latest input, for requests raised from inside eviction. */
  #now = 0;

  constructor(config: CompareConfig, sink: CompareSink) {
    this.config = config;
    this.#sink = sink;
    this.table = new ConnectionTable(config.maxConnections);
    this.qemuMode = config.mode === 'qemu';
    this.normalizerMask = this.qemuMode ? 0 : normalizerMask(config.normalizers);
    this.primary = new CompareSide('primary', this.counters.primary, (f, v) => sink.release(f, v));
    this.secondary = new CompareSide('secondary', this.counters.secondary, null);
  }

  get queuedPrimary(): number {
    return this.primary.queued;
  }

  get queuedSecondary(): number {
    return this.secondary.queued;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Fragment frames waiting for the rest of their datagram. */
  get heldFragments(): { primary: number; secondary: number; bytes: number } {
    return { primary: this.primary.held, secondary: this.secondary.held, bytes: this.primary.reassembler.heldBytes + this.secondary.reassembler.heldBytes };
  }

  get checkpointPending(): boolean {
    return this.#pending !== null;
  }

  get failedOver(): boolean {
    return this.#failover;
  }

  /** A primary frame (borrowed: valid only during the call; the engine copies what it keeps). */
  primaryIn(frame: Uint8Array, vnetHdrLen: number, nowMs: number): void {
    this.#input(this.primary, frame, vnetHdrLen, nowMs);
  }

  /** A secondary frame (borrowed, as primaryIn). */
  secondaryIn(frame: Uint8Array, vnetHdrLen: number, nowMs: number): void {
    this.#input(this.secondary, frame, vnetHdrLen, nowMs);
  }

  #classify(frame: Uint8Array, vnetHdrLen: number): PacketKind {
    if (this.qemuMode) return classifyQemu(frame, vnetHdrLen, this.#key);
    return classifyExtended(this.#view.decode(frame, 1, vnetHdrLen), this.#key);
  }

  #input(side: CompareSide, frame: Uint8Array, vnetHdrLen: number, nowMs: number): void {
    const c = side.counters;
    c.in++;
    this.#now = nowMs;
    if (this.#failover) {
      c.failover++;
      side.emit(frame, vnetHdrLen);
      return;
    }
    let kind = this.#classify(frame, vnetHdrLen);
    let parts: Buffer[] | null = null;
    if (!this.qemuMode && FragmentReassembler.isFragment(this.#view)) {
      const r = this.#reassemble(side, nowMs);
      if (r === null) return;
      frame = r.frame;
      parts = r.fragments;
      kind = classifyExtended(this.#view.decode(frame, 1, vnetHdrLen), this.#key);
    }
    const frames = parts === null ? 1 : parts.length;
    if (kind === KIND_UNSUPPORTED) {
      side.emit(frame, vnetHdrLen, parts);
      c.unsupported += frames;
      return;
    }
    if (!this.qemuMode && this.config.bypass.length > 0) {
      const rule = matchBypass(this.config.bypass, this.#key);
      if (rule !== null) {
        rule.hits++;
        side.emit(frame, vnetHdrLen, parts);
        c.bypassed += frames;
        return;
      }
    }
    const conn = this.table.get(this.#key, this.#evict);
    const queue = side.of(conn).queue;
    if (!this.#admit(side, queue.length, frame.length, conn, nowMs, frames)) return;
    const p = this.#enqueue(side, conn, frame, vnetHdrLen, kind, nowMs, parts);
    if (kind === KIND_TCP) this.#trackAck(side, conn, p);
    if (conn.kind === KIND_TCP) compareTcp(this, conn, nowMs);
    else compareDatagrams(this, conn, nowMs);
    // Still waiting for the other side: it needs bytes of its own.
    if (p.waiting && p.borrowed) {
      this.store.keep(p);
      if (this.store.slabBytes > this.#compactAboveBytes()) this.#compactStore();
    }
  }

  /**
   * Slab memory above which waiting packets are copied out of sparse slabs.
   * After a compaction every slab but the current one is at least
   * STORE_SPARSE_FRACTION full, so slabs hold at most 1/fraction times the
   * queued bytes (themselves bounded by maxQueuedBytes) plus one slab; the
   * slack of a few slabs keeps compactions apart.
   */
  #compactAboveBytes(): number {
    return this.#queuedBytes / STORE_SPARSE_FRACTION + 4 * STORE_SLAB_BYTES;
  }

  /** Queue-size and memory bounds; counts and reports a refusal. */
  #admit(side: CompareSide, queueLength: number, bytes: number, conn: Connection, nowMs: number, frames: number): boolean {
    const cfg = this.config;
    // QEMU admits while the queue holds ≤ max packets, so max+1 fit; extended mode holds max.
    const full = this.qemuMode ? queueLength > cfg.maxQueueSize : queueLength >= cfg.maxQueueSize;
    if (full) {
      this.#drop(side, 'queueFull', frames);
      // QEMU only traces this drop; extended mode asks for a checkpoint to resynchronise.
      if (!this.qemuMode) this.#request('queue-overflow', nowMs, { cause: 'queue-overflow', flow: conn.describe(), proto: conn.proto });
      return false;
    }
    if (this.#queuedBytes + bytes > cfg.maxQueuedBytes) {
      this.#drop(side, 'memory', frames);
      this.#request('memory', nowMs, { cause: 'memory', flow: conn.describe(), proto: conn.proto });
      return false;
    }
    return true;
  }

  #drop(side: CompareSide, reason: DropReason, frames: number): void {
    side.counters[reason] += frames;
  }

  #enqueue(side: CompareSide, conn: Connection, frame: Uint8Array, vnetHdrLen: number, kind: PacketKind, nowMs: number, parts: Buffer[] | null): ComparePacket {
    const key = this.#key;
    const p = this.store.acquire();
    p.buf = frame;
    p.off = 0;
    p.len = frame.length;
    // A reassembled datagram is the reassembler's own buffer; anything else is the caller's.
    p.borrowed = parts === null;
    p.vnetHdrLen = vnetHdrLen;
    p.createdMs = nowMs;
    p.arrival = this.#arrival++;
    p.kind = kind;
    p.parts = parts;
    p.frames = parts === null ? 1 : parts.length;
    p.family = key.family;
    p.l3Offset = key.l3Offset;
    p.l4Offset = key.l4Offset;
    p.ipHeaderLen = key.ipHeaderLen;
    const d = frame;
    if (kind === KIND_TCP) {
      const l4 = key.l4Offset;
      p.tcpSeq = u32be(d, l4 + 4);
      p.tcpAck = u32be(d, l4 + 8);
      p.tcpFlags = d[l4 + 13]!;
      p.headerSize = l4 + (d[l4 + 12]! >> 4) * 4;
      // QEMU counts everything after the TCP header as payload (Ethernet padding too); extended
      // mode stops at the IP datagram's end.
      const end = this.qemuMode ? d.length : Math.min(d.length, this.#view.ipEnd);
      p.payloadSize = Math.max(0, end - p.headerSize);
      p.seqEnd = (p.tcpSeq + p.payloadSize) >>> 0;
    } else if (kind === KIND_UDP || kind === KIND_ICMP) {
      // QEMU starts at vnet + ETH_HLEN + IHL·4 whatever the L2 length; extended mode at the real L4 offset.
      p.cmpOffset = this.qemuMode ? vnetHdrLen + 14 + key.ipHeaderLen : key.l4Offset;
    } else if (kind === KIND_ARP) {
      p.cmpOffset = key.l3Offset;
    } else {
      p.cmpOffset = vnetHdrLen;
    }
    const q = side.of(conn).queue;
    if (kind === KIND_TCP) q.insertBySeq(p);
    else q.push(p);
    p.waiting = true;
    side.queued += p.frames;
    this.#queuedBytes += p.len;
    return p;
  }

  #trackAck(side: CompareSide, conn: Connection, p: ComparePacket): void {
    const half = side.of(conn);
    const prev = half.ack;
    // QEMU's `ack - max > 0` is unsigned: it keeps the latest differing ACK. Extended mode keeps a wrap-aware maximum.
    half.ack = this.qemuMode ? p.tcpAck : prev === 0 || seqAfter(p.tcpAck, prev) ? p.tcpAck : prev;
  }

  leave(side: CompareSide, p: ComparePacket, reason: LeaveReason): void {
    p.waiting = false;
    side.queued -= p.frames;
    this.#queuedBytes -= p.len;
    side.counters[reason] += p.frames;
    side.emitPacket(p);
    this.store.free(p);
  }

  diverged(conn: Connection, nowMs: number, cause: 'payload' | 'size' | 'ack' | 'header', p: ComparePacket, s: ComparePacket, firstDiff: number, field: string | null): void {
    if (this.#pending !== null) {
      this.counters.coalesced++;
      return;
    }
    this.#request(cause, nowMs, {
      cause,
      flow: conn.describe(),
      proto: conn.proto,
      ...(field !== null ? { field } : {}),
      ...(conn.kind === KIND_TCP ? { seq: [p.tcpSeq, p.seqEnd] as const } : {}),
      firstDiffOffset: firstDiff,
      primary: snapshot(p),
      secondary: snapshot(s),
    });
  }

  /** Feeds the fragment in this.#view to a side's reassembler; the datagram once complete, else null. */
  #reassemble(side: CompareSide, nowMs: number): { frame: Buffer; fragments: Buffer[] } | null {
    const dropped: Buffer[] = [];
    const r = side.reassembler.add(this.#view, nowMs, dropped);
    // `dropped` holds earlier fragments of a datagram given up on; the current one is in r's verdict.
    side.held -= dropped.length;
    this.#drop(side, 'badFragment', dropped.length + (r === 'dropped' ? 1 : 0));
    if (r === 'dropped') return null;
    if (r === 'held') {
      side.held++;
      return null;
    }
    // Complete: the held fragments (all but the current one) move into the queue with it.
    side.held -= r.fragments.length - 1;
    this.counters.reassembled++;
    return r;
  }

  /** Emits a checkpoint request, or coalesces it into the pending one. */
  #request(cause: CheckpointCause, nowMs: number, divergence: Divergence): void {
    const c = this.counters;
    if (this.#pending !== null) {
      c.coalesced++;
      return;
    }
    c.checkpointRequests++;
    c.causes[cause]++;
    this.#pending = { cause, atMs: nowMs, attempt: 1, divergence };
    this.#sink.checkpoint(this.#pending);
  }

  /**
   * The old-packet scan (colo_old_packet_check): the first connection, in
   * creation order, holding a packet older than compareTimeoutMs yields one
   * request. While a request is pending and not done for compareTimeoutMs,
   * it is repeated (the checkpointer may have missed it). Also moves waiting
   * packets out of sparse storage slabs (packet-store.ts).
   */
  scan(nowMs: number): void {
    // Packets that waited long keep their slabs from reuse: give them buffers of their own.
    if (this.store.slabBytes > 2 * this.#queuedBytes + 4 * STORE_SLAB_BYTES) this.#compactStore();
    const timeout = this.config.compareTimeoutMs;
    const pending = this.#pending;
    if (pending !== null) {
      if (nowMs - pending.atMs >= timeout) {
        this.counters.checkpointRepeats++;
        this.#pending = { ...pending, atMs: nowMs, attempt: pending.attempt + 1 };
        this.#sink.checkpoint(this.#pending);
      }
      return;
    }
    if (this.primary.reassembler.oldestMs() < nowMs - timeout || this.secondary.reassembler.oldestMs() < nowMs - timeout) {
      this.#request('timeout', nowMs, { cause: 'timeout', flow: 'incomplete IP fragments', proto: -1 });
      return;
    }
    if (this.primary.queued === 0 && this.secondary.queued === 0) return;
    let oldest: Connection | null = null;
    for (const conn of this.table.busyConnections()) {
      const t = Math.min(conn.primary.queue.oldestMs(), conn.secondary.queue.oldestMs());
      if (nowMs - t > timeout && (oldest === null || conn.serial < oldest.serial)) oldest = conn;
    }
    if (oldest !== null) {
      const p = oldest.primary.queue.front();
      const s = oldest.secondary.queue.front();
      const d: Divergence = { cause: 'timeout', flow: oldest.describe(), proto: oldest.proto, ...(p !== undefined ? { primary: snapshot(p) } : {}), ...(s !== undefined ? { secondary: snapshot(s) } : {}) };
      this.#request('timeout', nowMs, d);
    }
  }

  /** Copies waiting packets out of slabs that are mostly free, so that those can be reused. */
  #compactStore(): void {
    const store = this.store;
    for (const conn of this.table.busyConnections()) {
      for (const q of [conn.primary.queue, conn.secondary.queue]) {
        for (let i = 0; i < q.length; i++) if (store.copyOutIfSparse(q.at(i)!)) this.counters.copiedOut++;
      }
    }
  }

  /**
   * The connections holding the most packets, deepest first (at most
   * `limit`): what the live page and query-status show of the table.
   */
  busiest(limit: number, nowMs: number): { flow: string; primary: number; secondary: number; oldestMs: number }[] {
    const busy = this.table.busyConnections();
    busy.sort((a, b) => b.primary.queue.length + b.secondary.queue.length - (a.primary.queue.length + a.secondary.queue.length));
    return busy.slice(0, limit).map((c) => ({
      flow: c.describe(),
      primary: c.primary.queue.length,
      secondary: c.secondary.queue.length,
      oldestMs: Math.max(0, Math.round(nowMs - Math.min(c.primary.queue.oldestMs(), c.secondary.queue.oldestMs()))),
    }));
  }

  /** Adds a bypass rule at run time (extended mode only: QEMU mode compares everything). */
  addBypass(rule: BypassRule): void {
    if (this.qemuMode) throw new NetrrError('ERR_BAD_OPTION', 'bypass rules apply to --mode extended only');
    this.config.bypass.push(rule);
  }

  /** Removes the bypass rule written `text`; its hits go with it. */
  removeBypass(text: string): void {
    const list = this.config.bypass;
    const i = list.findIndex((r) => r.text === text);
    if (i < 0) throw new NetrrError('ERR_BAD_OPTION', `no bypass rule "${text}"`);
    list.splice(i, 1);
  }

  /**
   * The checkpoint is done (COLO_CHECKPOINT, QMP RESUME, control command):
   * release every queued primary in arrival order, drop every queued
   * secondary, keep connection state (compare_seq, ACKs) as QEMU does.
   */
  checkpointDone(): void {
    const primaries: ComparePacket[] = [];
    for (const conn of this.table.busyConnections()) {
      for (const p of conn.primary.queue.drain()) primaries.push(p);
      for (const s of conn.secondary.queue.drain()) this.leave(this.secondary, s, 'flushed');
    }
    primaries.sort((a, b) => a.arrival - b.arrival);
    for (const p of primaries) this.leave(this.primary, p, 'flushed');
    // Incomplete datagrams: the primary's fragments go out as they are, the secondary's are dropped.
    for (const f of this.primary.reassembler.drain()) {
      this.#sink.release(f.frame, f.vnetHdrLen);
      this.counters.primary.flushed++;
    }
    this.counters.secondary.flushed += this.secondary.reassembler.drain().length;
    this.primary.held = 0;
    this.secondary.held = 0;
    this.counters.checkpointsDone++;
    this.#pending = null;
  }

  /** The secondary is gone: flush, then pass primary output through uncompared. */
  failover(): void {
    this.checkpointDone();
    this.#failover = true;
  }

  #evict = (conn: Connection): void => {
    if (!conn.busy) return;
    // Never silently: its primaries go out in arrival order, its secondaries are counted,
    // and the replicas are asked to resynchronise.
    for (const p of conn.primary.queue.drain()) this.leave(this.primary, p, 'evicted');
    for (const s of conn.secondary.queue.drain()) this.leave(this.secondary, s, 'evicted');
    this.#request('table-full', this.#now, { cause: 'table-full', flow: conn.describe(), proto: conn.proto });
  };
}

/** A side's frame, copied, for a report (the packet itself goes back to the pool). */
function snapshot(p: ComparePacket): DivergentFrame {
  return { data: p.buf.slice(p.off, p.off + p.len), vnetHdrLen: p.vnetHdrLen, compareStart: p.kind === KIND_TCP ? p.headerSize + p.offset : p.cmpOffset };
}
