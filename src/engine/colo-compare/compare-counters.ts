// The compare engine's counters: one SideCounters per replica, the same type
// for both, and the checkpoint counters. Every frame a side takes in ends in
// exactly one of its fields (or is still queued or held): the accounting
// invariant test/compare-engine.test.ts checks after every step.

import { CHECKPOINT_CAUSES, type CheckpointCause } from './compare-config.ts';

/** The reasons a frame leaves by, in SideCounters' order (for the primary: why it was released). */
export const LEAVE_REASONS = ['matched', 'unsupported', 'noPayload', 'alreadyCompared', 'flushed', 'evicted', 'failover', 'bypassed'] as const;

/**
 * Where one side's frames went. For the primary, the reasons from `matched`
 * to `bypassed` are releases; for the secondary they are the same events, its
 * frame consumed (dropped once it has served). `queueFull`, `memory` and
 * `badFragment` are drops on either side: never released.
 */
export class SideCounters {
  in = 0;
  matched = 0;
  /** Forwarded uncompared as QEMU does (non-IPv4, VLAN, runts in qemu mode). */
  unsupported = 0;
  /** TCP segments without payload (SYN/FIN/pure ACK). */
  noPayload = 0;
  /** TCP data already covered by compared sequence space. */
  alreadyCompared = 0;
  /** Ended by a checkpoint flush. */
  flushed = 0;
  /** Ended when the connection table evicted a busy connection. */
  evicted = 0;
  /** After failover (no secondary any more). */
  failover = 0;
  /** A bypass rule (extended mode). */
  bypassed = 0;
  /** Dropped: the connection's queue was full. */
  queueFull = 0;
  /** Dropped: --max-queued-bytes reached. */
  memory = 0;
  /** Dropped: overlapping, inconsistent or over-bound fragments (extended mode). */
  badFragment = 0;

  /** Frames that left by a reason other than a drop (for the primary: released). */
  left(): number {
    let n = 0;
    for (const r of LEAVE_REASONS) n += this[r];
    return n;
  }
}

/** The leave reasons of one side as a plain record (summaries, status). */
export function leaveReasons(c: SideCounters): Record<(typeof LEAVE_REASONS)[number], number> {
  const out = {} as Record<(typeof LEAVE_REASONS)[number], number>;
  for (const r of LEAVE_REASONS) out[r] = c[r];
  return out;
}

export class CompareCounters {
  readonly primary = new SideCounters();
  readonly secondary = new SideCounters();
  /** Datagrams put back together from fragments (either side). */
  reassembled = 0;
  checkpointRequests = 0;
  checkpointRepeats = 0;
  /** Inconsistencies seen while a request was already pending. */
  coalesced = 0;
  checkpointsDone = 0;
  /** Queued packets copied out of a sparse storage slab so that it could be reused (src/engine/colo-compare/packet-store.ts). */
  copiedOut = 0;
  readonly causes = Object.fromEntries(CHECKPOINT_CAUSES.map((c) => [c, 0])) as Record<CheckpointCause, number>;

  /** Primary frames released, all reasons. */
  released(): number {
    return this.primary.left();
  }
}
