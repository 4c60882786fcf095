// One replica as the compare engine sees it: its counters, its fragment
// reassembler, what it holds and queues, and which half of each connection is
// its own. The engine builds this twice, for the primary and the secondary.

import type { ComparePacket } from './compare-packet.ts';
import type { Connection, ConnectionSide } from './connection-table.ts';
import type { LEAVE_REASONS, SideCounters } from './compare-counters.ts';
import { FragmentReassembler } from './fragment-reassembly.ts';

export type SideName = 'primary' | 'secondary';

/** The SideCounters fields a frame can leave by (each frame is counted in exactly one). */
export type LeaveReason = (typeof LEAVE_REASONS)[number];
export type DropReason = 'queueFull' | 'memory' | 'badFragment';

export class CompareSide {
  readonly name: SideName;
  readonly counters: SideCounters;
  readonly reassembler = new FragmentReassembler();
  /** Fragment frames held for reassembly (part of the accounting). */
  held = 0;
  /** Frames in this side's queues. */
  queued = 0;
  /**
   * Where this side's frames go when they leave (uncompared, matched,
   * flushed): the primary's go out; the secondary's (null) have served their
   * purpose and go nowhere.
   */
  readonly #emit: ((frame: Uint8Array, vnetHdrLen: number) => void) | null;

  constructor(name: SideName, counters: SideCounters, emit: ((frame: Uint8Array, vnetHdrLen: number) => void) | null) {
    this.name = name;
    this.counters = counters;
    this.#emit = emit;
  }

  /** Emits a frame, or the original fragments it was reassembled from when `parts` is set. */
  emit(frame: Uint8Array, vnetHdrLen: number, parts: readonly Buffer[] | null = null): void {
    const emit = this.#emit;
    if (emit === null) return;
    if (parts === null) emit(frame, vnetHdrLen);
    else for (const f of parts) emit(f, vnetHdrLen);
  }

  /** This side's half of a connection. */
  of(conn: Connection): ConnectionSide {
    return this.name === 'primary' ? conn.primary : conn.secondary;
  }

  /** Emits a packet's frames (no view is made for a side whose frames go nowhere, or for a reassembled packet). */
  emitPacket(p: ComparePacket): void {
    if (this.#emit === null) return;
    this.emit(p.parts === null ? p.buf.subarray(p.off, p.off + p.len) : p.buf, p.vnetHdrLen, p.parts);
  }
}

/** What the compare algorithms (tcp-compare.ts, datagram-compare.ts) need from the engine. */
export interface CompareCore {
  readonly primary: CompareSide;
  readonly secondary: CompareSide;
  readonly qemuMode: boolean;
  /** Normalizers as a bit set (extended mode; 0 in qemu mode). */
  readonly normalizerMask: number;
  /** A packet the caller took off its queue leaves for `reason` (a primary is released). */
  leave(side: CompareSide, p: ComparePacket, reason: LeaveReason): void;
  /** Reports a divergence between the fronts of a connection's queues. */
  diverged(conn: Connection, nowMs: number, cause: 'payload' | 'size' | 'ack' | 'header', p: ComparePacket, s: ComparePacket, firstDiff: number, field: string | null): void;
}
