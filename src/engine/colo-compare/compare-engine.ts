// The COLO compare engine: pure, driven by frames and an injected clock.
// Primary and secondary output go in; primary frames that the secondary
// matches come out (release); a divergence becomes a checkpoint request.
//
// --mode qemu reproduces colo-compare's observable behaviour (reference
// colo-proxy.md §8) except where that behaviour is a bug (see README):
// FIFO compare and release for UDP/ICMP/other, release in arrival order at a
// checkpoint, bounded LRU eviction instead of a table reset, requests that
// coalesce until the checkpoint is done.

import { NetrrError } from '../../errors.ts';
import { PacketView } from '../../packet/packet-view.ts';
import { sumFields } from '../frame-counters.ts';
import {
  ComparePacket,
  ConnKey,
  KIND_ARP,
  KIND_ICMP,
  KIND_OTHER,
  KIND_TCP,
  KIND_UDP,
  KIND_UNSUPPORTED,
  type PacketKind,
  classifyExtended,
  classifyQemu,
} from './compare-packet.ts';
import { type BypassRule, matchBypass } from './bypass-rules.ts';
import { type Connection, ConnectionTable, DEFAULT_MAX_CONNECTIONS } from './connection-table.ts';
import { FragmentReassembler } from './fragment-reassembly.ts';
import { DEFAULT_NORMALIZERS, type Normalizer, compareNormalizedFrames, normalizerMask, tcpHeaderDifference } from './normalizers.ts';

export type CompareMode = 'qemu' | 'extended';

export type CheckpointCause = 'payload' | 'size' | 'ack' | 'header' | 'timeout' | 'queue-overflow' | 'memory' | 'table-full';

export interface CompareConfig {
  readonly mode: CompareMode;
  /** Age after which an unmatched packet forces a checkpoint (QEMU compare_timeout). */
  readonly compareTimeoutMs: number;
  /** Period of the old-packet scan (QEMU expired_scan_cycle); the caller runs scan() at this rate. */
  readonly expiredScanCycleMs: number;
  /** Per-connection, per-side queue bound (QEMU max_queue_size; qemu mode holds max+1 like QEMU). */
  readonly maxQueueSize: number;
  readonly maxConnections: number;
  /** Bound on the bytes of all queued packets together. */
  readonly maxQueuedBytes: number;
  /** extended mode: header fields ignored where headers are compared. */
  readonly normalizers: readonly Normalizer[];
  /** extended mode: n-tuples released uncompared (mutable at run time through the control socket). */
  readonly bypass: BypassRule[];
}

export const DEFAULT_COMPARE_TIMEOUT_MS = 3000;
export const DEFAULT_EXPIRED_SCAN_CYCLE_MS = 1000;
export const DEFAULT_MAX_QUEUE_SIZE = 1024;
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024;

export function compareConfig(partial: Partial<CompareConfig> = {}): CompareConfig {
  return {
    mode: partial.mode ?? 'extended',
    compareTimeoutMs: partial.compareTimeoutMs ?? DEFAULT_COMPARE_TIMEOUT_MS,
    expiredScanCycleMs: partial.expiredScanCycleMs ?? DEFAULT_EXPIRED_SCAN_CYCLE_MS,
    maxQueueSize: partial.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
    maxConnections: partial.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    maxQueuedBytes: partial.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    normalizers: partial.normalizers ?? DEFAULT_NORMALIZERS,
    bypass: partial.bypass ?? [],
  };
}

/** What diverged, for the report written with each checkpoint request. */
export interface Divergence {
  readonly cause: CheckpointCause;
  readonly flow: string;
  readonly proto: number;
  /** TCP: sequence range of the primary segment in question. */
  readonly seq?: readonly [number, number];
  /** Offset in the compared bytes where the two first differ (payload causes). */
  readonly firstDiffOffset?: number;
  /** The header field that differs (cause 'header'). */
  readonly field?: string;
  readonly primary?: ComparePacket;
  readonly secondary?: ComparePacket;
}

export interface CheckpointRequest {
  readonly cause: CheckpointCause;
  readonly atMs: number;
  /** 1 for the first request of an epoch; higher for a repeat while it is not yet done. */
  readonly attempt: number;
  readonly divergence: Divergence;
}

export interface CompareSink {
  /** A primary frame leaves (the view is owned by the engine's copy or the caller's frame). */
  release(frame: Uint8Array, vnetHdrLen: number): void;
  checkpoint(request: CheckpointRequest): void;
}

/** Why a primary frame was released. */
export class ReleaseCounters {
  matched = 0;
  /** QEMU forwards these uncompared: non-IPv4, VLAN, runts (qemu mode). */
  unsupported = 0;
  /** TCP segments without payload (SYN/FIN/pure ACK) released at once. */
  noPayload = 0;
  /** TCP data already covered by compared sequence space. */
  alreadyCompared = 0;
  /** Released by a checkpoint flush. */
  flushed = 0;
  /** Released when the connection table evicted a busy connection. */
  evicted = 0;
  /** Released uncompared after failover (no secondary any more). */
  failover = 0;
  /** Released uncompared by a bypass rule (extended mode). */
  bypassed = 0;
}

/** Fragments (extended mode) that never reach the compare. */
export class FragmentCounters {
  /** Overlapping, inconsistent or over-bound fragments: dropped, never released. */
  primaryBad = 0;
  secondaryBad = 0;
  /** Datagrams put back together. */
  reassembled = 0;
}

export class SecondaryCounters {
  matched = 0;
  /** Dropped: a frame the primary side would forward uncompared. */
  unsupported = 0;
  noPayload = 0;
  alreadyCompared = 0;
  flushed = 0;
  evicted = 0;
  queueFull = 0;
  memory = 0;
  failover = 0;
  bypassed = 0;
}

export class CompareCounters {
  primaryIn = 0;
  secondaryIn = 0;
  readonly released = new ReleaseCounters();
  /** Primary frames dropped: queue full or memory bound (never released). */
  primaryQueueFull = 0;
  primaryMemory = 0;
  readonly secondary = new SecondaryCounters();
  readonly fragments = new FragmentCounters();
  checkpointRequests = 0;
  checkpointRepeats = 0;
  /** Inconsistencies seen while a request was already pending. */
  coalesced = 0;
  checkpointsDone = 0;
  readonly causes: Record<CheckpointCause, number> = { payload: 0, size: 0, ack: 0, header: 0, timeout: 0, 'queue-overflow': 0, memory: 0, 'table-full': 0 };

  /** Primary frames released, all reasons. */
  releasedTotal(): number {
    return sumFields(this.released);
  }

  /** Secondary frames matched or dropped, all reasons. */
  secondaryConsumed(): number {
    return sumFields(this.secondary);
  }
}

/** (int32)(a - b) > 0: a is after b in sequence space. */
function after(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** Below this length a JS loop beats the native call (bench/compare-engine.ts). */
const NATIVE_COMPARE_MIN_BYTES = 32;

function bytesEqual(a: Buffer, ao: number, b: Buffer, bo: number, len: number): boolean {
  if (len < 0 || ao + len > a.length || bo + len > b.length) return false;
  if (len >= NATIVE_COMPARE_MIN_BYTES) return a.compare(b, bo, bo + len, ao, ao + len) === 0;
  for (let i = 0; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

function firstDiff(a: Uint8Array, ao: number, b: Uint8Array, bo: number): number {
  const n = Math.min(a.length - ao, b.length - bo);
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return i;
  return n;
}

const FREE_PRIMARY = 1;
const FREE_SECONDARY = 2;

export class CompareEngine {
  readonly config: CompareConfig;
  readonly counters = new CompareCounters();
  readonly table: ConnectionTable;
  #sink: CompareSink;
  #key = new ConnKey();
  #view = new PacketView();
  #arrival = 0;
  #queuedBytes = 0;
  #queuedPrimary = 0;
  #queuedSecondary = 0;
  #pending: CheckpointRequest | null = null;
  #failover = false;
  /** Time of the latest input, for requests raised from inside eviction. */
  #now = 0;
  /** Set during a TCP compare pass: the mark function's reason for a miscompare. */
  #tcpMissCause: CheckpointCause = 'payload';
  #tcpMissField: string | null = null;
  readonly #reasmPrimary = new FragmentReassembler();
  readonly #reasmSecondary = new FragmentReassembler();
  /** Fragment frames held for reassembly, per side (part of the accounting). */
  #heldPrimary = 0;
  #heldSecondary = 0;
  /** Normalizers as a bit set (extended mode). */
  readonly #norm: number;
  readonly #extended: boolean;

  constructor(config: CompareConfig, sink: CompareSink) {
    this.config = config;
    this.#sink = sink;
    this.table = new ConnectionTable(config.maxConnections);
    this.#norm = normalizerMask(config.normalizers);
    this.#extended = config.mode === 'extended';
  }

  get queuedPrimary(): number {
    return this.#queuedPrimary;
  }

  get queuedSecondary(): number {
    return this.#queuedSecondary;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Fragment frames waiting for the rest of their datagram. */
  get heldFragments(): { primary: number; secondary: number; bytes: number } {
    return { primary: this.#heldPrimary, secondary: this.#heldSecondary, bytes: this.#reasmPrimary.heldBytes + this.#reasmSecondary.heldBytes };
  }

  get checkpointPending(): boolean {
    return this.#pending !== null;
  }

  get failedOver(): boolean {
    return this.#failover;
  }

  #classify(frame: Uint8Array, vnetHdrLen: number): PacketKind {
    if (this.config.mode === 'qemu') return classifyQemu(frame, vnetHdrLen, this.#key);
    return classifyExtended(this.#view.decode(frame, 1, vnetHdrLen), this.#key);
  }

  primaryIn(frame: Uint8Array, vnetHdrLen: number, nowMs: number): void {
    const c = this.counters;
    c.primaryIn++;
    this.#now = nowMs;
    if (this.#failover) {
      c.released.failover++;
      this.#sink.release(frame, vnetHdrLen);
      return;
    }
    let kind = this.#classify(frame, vnetHdrLen);
    let parts: Buffer[] | null = null;
    if (this.#extended && FragmentReassembler.isFragment(this.#view)) {
      const r = this.#reassemble(true, nowMs);
      if (r === null) return;
      frame = r.frame;
      parts = r.fragments;
      kind = classifyExtended(this.#view.decode(frame, 1, vnetHdrLen), this.#key);
    }
    if (kind === KIND_UNSUPPORTED) {
      c.released.unsupported += this.#emit(frame, vnetHdrLen, parts);
      return;
    }
    if (this.#extended && this.config.bypass.length > 0) {
      const rule = matchBypass(this.config.bypass, this.#key);
      if (rule !== null) {
        rule.hits++;
        c.released.bypassed += this.#emit(frame, vnetHdrLen, parts);
        return;
      }
    }
    const conn = this.table.get(this.#key, this.#evict);
    if (!this.#admit(conn.primary.length, frame.length, true, conn, nowMs, parts === null ? 1 : parts.length)) return;
    const p = this.#enqueue(conn, true, frame, vnetHdrLen, kind, nowMs, parts);
    if (kind === KIND_TCP) this.#trackAck(conn, p, true);
    this.#compare(conn, nowMs);
  }

  secondaryIn(frame: Uint8Array, vnetHdrLen: number, nowMs: number): void {
    const c = this.counters;
    c.secondaryIn++;
    this.#now = nowMs;
    if (this.#failover) {
      c.secondary.failover++;
      return;
    }
    let kind = this.#classify(frame, vnetHdrLen);
    let parts = 1;
    if (this.#extended && FragmentReassembler.isFragment(this.#view)) {
      const r = this.#reassemble(false, nowMs);
      if (r === null) return;
      frame = r.frame;
      parts = r.fragments.length;
      kind = classifyExtended(this.#view.decode(frame, 1, vnetHdrLen), this.#key);
    }
    if (kind === KIND_UNSUPPORTED) {
      c.secondary.unsupported += parts;
      return;
    }
    if (this.#extended && this.config.bypass.length > 0) {
      const rule = matchBypass(this.config.bypass, this.#key);
      if (rule !== null) {
        rule.hits++;
        c.secondary.bypassed += parts;
        return;
      }
    }
    const conn = this.table.get(this.#key, this.#evict);
    if (!this.#admit(conn.secondary.length, frame.length, false, conn, nowMs, parts)) return;
    const p = this.#enqueue(conn, false, frame, vnetHdrLen, kind, nowMs, parts > 1 ? parts : null);
    if (kind === KIND_TCP) this.#trackAck(conn, p, false);
    this.#compare(conn, nowMs);
  }

  /** Queue-size and memory bounds; counts and reports a refusal. */
  #admit(queueLength: number, bytes: number, primary: boolean, conn: Connection, nowMs: number, frames: number): boolean {
    const cfg = this.config;
    const c = this.counters;
    // QEMU admits while the queue holds ≤ max packets, so max+1 fit; extended mode holds max.
    const full = cfg.mode === 'qemu' ? queueLength > cfg.maxQueueSize : queueLength >= cfg.maxQueueSize;
    if (full) {
      if (primary) c.primaryQueueFull += frames;
      else c.secondary.queueFull += frames;
      // QEMU only traces this drop; extended mode asks for a checkpoint to resynchronise.
      if (cfg.mode === 'extended') this.#request('queue-overflow', nowMs, { cause: 'queue-overflow', flow: conn.describe(), proto: conn.proto });
      return false;
    }
    if (this.#queuedBytes + bytes > cfg.maxQueuedBytes) {
      if (primary) c.primaryMemory += frames;
      else c.secondary.memory += frames;
      this.#request('memory', nowMs, { cause: 'memory', flow: conn.describe(), proto: conn.proto });
      return false;
    }
    return true;
  }

  #enqueue(conn: Connection, primary: boolean, frame: Uint8Array, vnetHdrLen: number, kind: PacketKind, nowMs: number, parts: Buffer[] | number | null): ComparePacket {
    const key = this.#key;
    // The queue owns its packets: copy out of the socket chunk (which may be 64 KiB for a 60-byte frame).
    // allocUnsafe takes small copies from Node's pool; set() is a memcpy.
    const copy = Buffer.allocUnsafe(frame.length);
    copy.set(frame);
    const p = new ComparePacket(copy, vnetHdrLen, nowMs, this.#arrival++);
    p.kind = kind;
    if (Array.isArray(parts)) p.parts = parts;
    p.frames = parts === null ? 1 : Array.isArray(parts) ? parts.length : parts;
    p.family = key.family;
    p.l3Offset = key.l3Offset;
    p.l4Offset = key.l4Offset;
    p.ipHeaderLen = key.ipHeaderLen;
    const d = p.data;
    if (kind === KIND_TCP) {
      const l4 = key.l4Offset;
      p.tcpSeq = ((d[l4 + 4]! << 24) | (d[l4 + 5]! << 16) | (d[l4 + 6]! << 8) | d[l4 + 7]!) >>> 0;
      p.tcpAck = ((d[l4 + 8]! << 24) | (d[l4 + 9]! << 16) | (d[l4 + 10]! << 8) | d[l4 + 11]!) >>> 0;
      p.tcpFlags = d[l4 + 13]!;
      p.headerSize = l4 + (d[l4 + 12]! >> 4) * 4;
      // QEMU counts everything after the TCP header as payload (Ethernet padding too); extended
      // mode stops at the IP datagram's end.
      const end = this.config.mode === 'qemu' ? d.length : Math.min(d.length, this.#view.ipEnd);
      p.payloadSize = Math.max(0, end - p.headerSize);
      p.seqEnd = (p.tcpSeq + p.payloadSize) >>> 0;
    } else if (kind === KIND_UDP || kind === KIND_ICMP) {
      // QEMU starts at vnet + ETH_HLEN + IHL·4 whatever the L2 length; extended mode at the real L4 offset.
      p.cmpOffset = this.config.mode === 'qemu' ? vnetHdrLen + 14 + key.ipHeaderLen : key.l4Offset;
    } else if (kind === KIND_ARP) {
      p.cmpOffset = key.l3Offset;
    } else {
      p.cmpOffset = vnetHdrLen;
    }
    if (primary) {
      if (kind === KIND_TCP) conn.primary.insertBySeq(p);
      else conn.primary.push(p);
      this.#queuedPrimary += p.frames;
    } else {
      if (kind === KIND_TCP) conn.secondary.insertBySeq(p);
      else conn.secondary.push(p);
      this.#queuedSecondary += p.frames;
    }
    this.#queuedBytes += d.length;
    return p;
  }

  #trackAck(conn: Connection, p: ComparePacket, primary: boolean): void {
    const prev = primary ? conn.pack : conn.sack;
    // QEMU's `ack - max > 0` is unsigned: it keeps the latest differing ACK. Extended mode keeps a wrap-aware maximum.
    const next = this.config.mode === 'qemu' ? p.tcpAck : prev === 0 || after(p.tcpAck, prev) ? p.tcpAck : prev;
    if (primary) conn.pack = next;
    else conn.sack = next;
  }

  #compare(conn: Connection, nowMs: number): void {
    if (conn.kind === KIND_TCP) this.#compareTcp(conn, nowMs);
    else this.#compareDatagrams(conn, nowMs);
  }

  /** Releases a queued primary (its original fragments, if reassembled); returns the frames released. */
  #releasePrimary(p: ComparePacket): number {
    this.#queuedPrimary -= p.frames;
    this.#queuedBytes -= p.data.length;
    return this.#emit(p.data, p.vnetHdrLen, p.parts);
  }

  #emit(frame: Uint8Array, vnetHdrLen: number, parts: Buffer[] | null): number {
    if (parts === null) {
      this.#sink.release(frame, vnetHdrLen);
      return 1;
    }
    for (const f of parts) this.#sink.release(f, vnetHdrLen);
    return parts.length;
  }

  /** Drops a queued secondary; returns the frames it stood for. */
  #dropSecondary(p: ComparePacket): number {
    this.#queuedSecondary -= p.frames;
    this.#queuedBytes -= p.data.length;
    return p.frames;
  }

  /** Feeds the fragment in this.#view to a side's reassembler; the datagram once complete, else null. */
  #reassemble(primary: boolean, nowMs: number): { frame: Buffer; fragments: Buffer[] } | null {
    const c = this.counters;
    const dropped: Buffer[] = [];
    const r = (primary ? this.#reasmPrimary : this.#reasmSecondary).add(this.#view, nowMs, dropped);
    // `dropped` holds earlier fragments of a datagram given up on; the current one is in r's verdict.
    const gone = dropped.length + (r === 'dropped' ? 1 : 0);
    if (primary) {
      this.#heldPrimary -= dropped.length;
      c.fragments.primaryBad += gone;
    } else {
      this.#heldSecondary -= dropped.length;
      c.fragments.secondaryBad += gone;
    }
    if (r === 'dropped') return null;
    if (r === 'held') {
      if (primary) this.#heldPrimary++;
      else this.#heldSecondary++;
      return null;
    }
    // Complete: the held fragments (all but the current one) move into the queue with it.
    if (primary) this.#heldPrimary -= r.fragments.length - 1;
    else this.#heldSecondary -= r.fragments.length - 1;
    c.fragments.reassembled++;
    return r;
  }

  // reference colo-proxy.md §8.4, colo_compare_tcp: the lowest-sequence packets of each side are compared.
  #compareTcp(conn: Connection, nowMs: number): void {
    const c = this.counters;
    const minAck = this.config.mode === 'qemu' ? Math.min(conn.pack, conn.sack) : after(conn.pack, conn.sack) ? conn.sack : conn.pack;
    const pq = conn.primary;
    const sq = conn.secondary;
    let p: ComparePacket | undefined;
    for (;;) {
      // label pri:
      p = pq.shift();
      if (p === undefined) return;
      for (;;) {
        // label sec:
        const s = sq.shift();
        if (s === undefined) {
          pq.unshift(p!);
          return;
        }
        let pl: ComparePacket | null = p!;
        if (pl.tcpSeq === pl.seqEnd) {
          c.released.noPayload += this.#releasePrimary(pl);
          pl = null;
        }
        if (pl !== null && conn.compareSeq !== 0 && !after(pl.seqEnd, conn.compareSeq)) {
          c.released.alreadyCompared += this.#releasePrimary(pl);
          pl = null;
        }
        if (s.tcpSeq === s.seqEnd || (conn.compareSeq !== 0 && !after(s.seqEnd, conn.compareSeq))) {
          if (s.tcpSeq === s.seqEnd) c.secondary.noPayload += this.#dropSecondary(s);
          else c.secondary.alreadyCompared += this.#dropSecondary(s);
          if (pl === null) break; // goto pri
          p = pl;
          continue; // goto sec
        }
        if (pl === null) {
          sq.unshift(s);
          break; // goto pri
        }
        const mark = this.#markTcp(pl, s, minAck);
        if (mark === FREE_PRIMARY) {
          conn.compareSeq = pl.seqEnd;
          c.released.matched += this.#releasePrimary(pl);
          sq.unshift(s);
          break;
        }
        if (mark === FREE_SECONDARY) {
          conn.compareSeq = s.seqEnd;
          c.secondary.matched += this.#dropSecondary(s);
          p = pl;
          continue;
        }
        if (mark === (FREE_PRIMARY | FREE_SECONDARY)) {
          conn.compareSeq = pl.seqEnd;
          c.released.matched += this.#releasePrimary(pl);
          c.secondary.matched += this.#dropSecondary(s);
          break;
        }
        pq.unshift(pl);
        sq.unshift(s);
        const cause = this.#tcpMissCause;
        this.#request(cause, nowMs, {
          cause,
          flow: conn.describe(),
          proto: conn.proto,
          ...(cause === 'header' && this.#tcpMissField !== null ? { field: this.#tcpMissField } : {}),
          seq: [pl.tcpSeq, pl.seqEnd],
          firstDiffOffset: firstDiff(pl.data, pl.headerSize + pl.offset, s.data, s.headerSize + s.offset),
          primary: pl,
          secondary: s,
        });
        return;
      }
    }
  }

  // colo_mark_tcp_pkt; bounds-checked where QEMU's memcmp would read past a shorter segment.
  #markTcp(p: ComparePacket, s: ComparePacket, maxAck: number): number {
    if (p.tcpSeq === s.tcpSeq && p.seqEnd === s.seqEnd && bytesEqual(p.data, p.headerSize, s.data, s.headerSize, p.payloadSize)) {
      // Same segment on both sides: extended mode also compares what the headers say (normalized).
      if (this.#extended) {
        const field = tcpHeaderDifference(p.data, p.l4Offset, s.data, s.l4Offset, this.#norm);
        if (field !== null) {
          this.#tcpMissCause = 'header';
          this.#tcpMissField = field;
          return 0;
        }
      }
      return FREE_PRIMARY | FREE_SECONDARY;
    }
    if (!after(p.seqEnd, s.seqEnd)) {
      const len = p.payloadSize - p.offset;
      if (bytesEqual(p.data, p.headerSize + p.offset, s.data, s.headerSize + s.offset, len)) {
        if (!after(p.tcpAck, maxAck)) {
          s.offset += len;
          return FREE_PRIMARY;
        }
        // The secondary has not acknowledged what the primary's ACK covers yet.
        this.#tcpMissCause = 'ack';
        return 0;
      }
    } else {
      const len = s.payloadSize - s.offset;
      if (bytesEqual(p.data, p.headerSize + p.offset, s.data, s.headerSize + s.offset, len)) {
        p.offset += len;
        return FREE_SECONDARY;
      }
    }
    this.#tcpMissCause = 'payload';
    return 0;
  }

  // colo_compare_packet, but FIFO: the oldest primary is compared first (upstream pops the newest).
  #compareDatagrams(conn: Connection, nowMs: number): void {
    const c = this.counters;
    const pq = conn.primary;
    const sq = conn.secondary;
    while (pq.length > 0 && sq.length > 0) {
      const p = pq.front()!;
      let hit = -1;
      const normalized = this.#extended && p.kind === KIND_OTHER && p.family !== 0;
      for (let i = 0; i < sq.length; i++) {
        const s = sq.at(i)!;
        if (s.data.length !== p.data.length) continue;
        const same = normalized
          ? compareNormalizedFrames(p.data, s.data, p.cmpOffset, p.l3Offset, p.ipHeaderLen, p.family, this.#norm) < 0
          : bytesEqual(p.data, p.cmpOffset, s.data, p.cmpOffset, p.data.length - p.cmpOffset);
        if (same) {
          hit = i;
          break;
        }
      }
      if (hit < 0) {
        const s = sq.front()!;
        const cause: CheckpointCause = s.data.length !== p.data.length ? 'size' : 'payload';
        const diff =
          normalized && cause === 'payload'
            ? compareNormalizedFrames(p.data, s.data, p.cmpOffset, p.l3Offset, p.ipHeaderLen, p.family, this.#norm)
            : firstDiff(p.data, p.cmpOffset, s.data, p.cmpOffset);
        this.#request(cause, nowMs, {
          cause,
          flow: conn.describe(),
          proto: conn.proto,
          firstDiffOffset: diff,
          primary: p,
          secondary: s,
        });
        return;
      }
      pq.shift();
      const s = sq.removeAt(hit);
      c.released.matched += this.#releasePrimary(p);
      c.secondary.matched += this.#dropSecondary(s);
    }
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
   * it is repeated (the checkpointer may have missed it).
   */
  scan(nowMs: number): void {
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
    if (this.#reasmPrimary.oldestMs() < nowMs - timeout || this.#reasmSecondary.oldestMs() < nowMs - timeout) {
      this.#request('timeout', nowMs, { cause: 'timeout', flow: 'incomplete IP fragments', proto: -1 });
      return;
    }
    if (this.#queuedPrimary === 0 && this.#queuedSecondary === 0) return;
    let oldest: Connection | null = null;
    for (const conn of this.table.busyConnections()) {
      const t = Math.min(conn.primary.oldestMs(), conn.secondary.oldestMs());
      if (nowMs - t > timeout && (oldest === null || conn.serial < oldest.serial)) oldest = conn;
    }
    if (oldest !== null) {
      const p = oldest.primary.front();
      const s = oldest.secondary.front();
      const d: Divergence = { cause: 'timeout', flow: oldest.describe(), proto: oldest.proto, ...(p !== undefined ? { primary: p } : {}), ...(s !== undefined ? { secondary: s } : {}) };
      this.#request('timeout', nowMs, d);
    }
  }

  /**
   * The checkpoint is done (COLO_CHECKPOINT, QMP RESUME, control command):
   * release every queued primary in arrival order, drop every queued
   * secondary, keep connection state (compare_seq, ACKs) as QEMU does.
   */
  /** Adds a bypass rule at run time (extended mode only: QEMU mode compares everything). */
  addBypass(rule: BypassRule): void {
    if (!this.#extended) throw new NetrrError('ERR_BAD_OPTION', 'bypass rules apply to --mode extended only');
    this.config.bypass.push(rule);
  }

  /** Removes the bypass rule written `text`; its hits go with it. */
  removeBypass(text: string): void {
    const list = this.config.bypass;
    const i = list.findIndex((r) => r.text === text);
    if (i < 0) throw new NetrrError('ERR_BAD_OPTION', `no bypass rule "${text}"`);
    list.splice(i, 1);
  }

  checkpointDone(): void {
    const c = this.counters;
    const primaries: ComparePacket[] = [];
    for (const conn of this.table.busyConnections()) {
      for (const p of conn.primary.drain()) primaries.push(p);
      for (const s of conn.secondary.drain()) c.secondary.flushed += this.#dropSecondary(s);
    }
    primaries.sort((a, b) => a.arrival - b.arrival);
    for (const p of primaries) c.released.flushed += this.#releasePrimary(p);
    // Incomplete datagrams: the primary's fragments go out as they are, the secondary's are dropped.
    for (const f of this.#reasmPrimary.drain()) {
      this.#sink.release(f.frame, f.vnetHdrLen);
      c.released.flushed++;
    }
    c.secondary.flushed += this.#reasmSecondary.drain().length;
    this.#heldPrimary = 0;
    this.#heldSecondary = 0;
    c.checkpointsDone++;
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
    const c = this.counters;
    for (const p of conn.primary.drain()) c.released.evicted += this.#releasePrimary(p);
    for (const s of conn.secondary.drain()) c.secondary.evicted += this.#dropSecondary(s);
    this.#request('table-full', this.#now, { cause: 'table-full', flow: conn.describe(), proto: conn.proto });
  };


}
