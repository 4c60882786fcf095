// What the compare engine is configured with, and what it says back: the
// checkpoint request and the divergence it carries.

import { DEFAULT_MAX_CONNECTIONS } from './connection-table.ts';
import type { BypassRule } from './bypass-rules.ts';
import { DEFAULT_NORMALIZERS, type Normalizer } from './normalizers.ts';

export type CompareMode = 'qemu' | 'extended';

export type CheckpointCause = 'payload' | 'size' | 'ack' | 'header' | 'timeout' | 'queue-overflow' | 'memory' | 'table-full';

export const CHECKPOINT_CAUSES: readonly CheckpointCause[] = ['payload', 'size', 'ack', 'header', 'timeout', 'queue-overflow', 'memory', 'table-full'];

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

/** One side's frame in a divergence: a copy, taken when the request was made. */
export interface DivergentFrame {
  readonly data: Uint8Array;
  readonly vnetHdrLen: number;
  /** Where the compared bytes start in data (TCP: the payload at its matched offset). */
  readonly compareStart: number;
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
  readonly primary?: DivergentFrame;
  readonly secondary?: DivergentFrame;
}

export interface CheckpointRequest {
  readonly cause: CheckpointCause;
  readonly atMs: number;
  /** 1 for the first request of an epoch; higher for a repeat while it is not yet done. */
  readonly attempt: number;
  readonly divergence: Divergence;
}

export interface CompareSink {
  /**
   * A primary frame leaves. The view is valid only during the call (it may be
   * the caller's input or the engine's storage, which is reused): copy to keep.
   */
  release(frame: Uint8Array, vnetHdrLen: number): void;
  checkpoint(request: CheckpointRequest): void;
}
