// The JSON line written for each checkpoint request: which flow, why, where
// the two sides first differ, and a few bytes of context from each.

import type { CheckpointRequest, DivergentFrame } from './compare-config.ts';

/** Bytes of context shown on each side of the first difference. */
export const CONTEXT_BYTES = 16;

export interface DivergenceRecord {
  time: string;
  cause: string;
  attempt: number;
  flow: string;
  proto: number;
  seq?: [number, number];
  firstDiffOffset?: number;
  field?: string;
  primary?: { length: number; context: string };
  secondary?: { length: number; context: string };
  normalizers: string[];
}

function context(f: DivergentFrame, diff: number | undefined): string {
  const from = f.compareStart + Math.max(0, (diff ?? 0) - CONTEXT_BYTES / 2);
  return Buffer.from(f.data.subarray(from, from + CONTEXT_BYTES)).toString('hex');
}

export function divergenceRecord(req: CheckpointRequest, normalizers: readonly string[], isoTime: string): DivergenceRecord {
  const d = req.divergence;
  const r: DivergenceRecord = { time: isoTime, cause: req.cause, attempt: req.attempt, flow: d.flow, proto: d.proto, normalizers: [...normalizers] };
  if (d.seq !== undefined) r.seq = [d.seq[0], d.seq[1]];
  if (d.firstDiffOffset !== undefined) r.firstDiffOffset = d.firstDiffOffset;
  if (d.field !== undefined) r.field = d.field;
  if (d.primary !== undefined) r.primary = { length: d.primary.data.length, context: context(d.primary, d.firstDiffOffset) };
  if (d.secondary !== undefined) r.secondary = { length: d.secondary.data.length, context: context(d.secondary, d.firstDiffOffset) };
  return r;
}
