// The demos' COLO controller (`netrr demo`, with and without guests): it
// answers compare's checkpoint requests after a short "checkpoint" (first
// bringing the secondary in line, as QEMU's COLO would), commits the buffer's
// epochs on a timer, and keeps what the summary and the live page show.

import { leaveReasons } from '../engine/colo-compare/compare-counters.ts';
import type { DivergenceRecord } from '../engine/colo-compare/divergence-record.ts';
import type { Chain } from './chain.ts';
import type { CompareProxy } from './compare-proxy.ts';

/** The controller commits an epoch this often (a checkpoint interval). */
export const DEMO_EPOCH_MS = 100;
/** How long the controller's "checkpoint" takes before it tells compare it is done. */
export const DEMO_CHECKPOINT_MS = 50;

/** What both demos report. */
export interface DemoCommonSummary {
  readonly seconds: number;
  readonly compared: { primary: number; secondary: number };
  readonly released: Record<string, number>;
  readonly checkpoints: Record<string, number>;
  readonly divergence: DivergenceRecord | null;
  readonly epochsCommitted: number;
  readonly buffer: { released: number; holdP50Ms: number; holdP99Ms: number };
}

export class DemoController {
  readonly divergences: DivergenceRecord[] = [];
  /** Commits that released frames, for the page's timeline. */
  readonly epochs: { epoch: number; frames: number; atMs: number }[] = [];
  readonly checkpoints: Record<string, number> = {};
  epochsCommitted = 0;
  readonly #compare: CompareProxy;
  readonly #buffered: Chain;
  readonly #log: (line: string) => void;
  readonly #beforeDone: () => void;
  readonly #t0 = performance.now();
  #timer: NodeJS.Timeout | null = null;

  /** `buffered` is the chain whose first filter is the epoch buffer; `beforeDone` runs at each checkpoint before compare is told. */
  constructor(compare: CompareProxy, buffered: Chain, log: (line: string) => void, beforeDone: () => void = () => {}) {
    this.#compare = compare;
    this.#buffered = buffered;
    this.#log = log;
    this.#beforeDone = beforeDone;
    compare.events.on((e) => {
      if (e.name !== 'CHECKPOINT_REQUEST') return;
      const r = e.data as unknown as DivergenceRecord;
      if (r.attempt !== 1) return;
      this.checkpoints[r.cause] = (this.checkpoints[r.cause] ?? 0) + 1;
      this.divergences.push(r);
      this.#log(`  checkpoint requested: ${r.cause} on ${r.flow}${r.firstDiffOffset !== undefined ? `, first differing byte at ${r.firstDiffOffset}` : ''}`);
      setTimeout(() => {
        this.#beforeDone();
        this.#compare.commands['checkpoint-done']!.handler({});
      }, DEMO_CHECKPOINT_MS);
    });
    buffered.events.on((e) => {
      if (e.name !== 'EPOCH_COMMITTED') return;
      this.epochsCommitted++;
      const frames = Number(e.data.frames);
      if (frames > 0) this.epochs.push({ epoch: Number(e.data.epoch), frames, atMs: Math.round(performance.now() - this.#t0) });
    });
  }

  /** Commits an epoch every DEMO_EPOCH_MS until stop(). */
  startEpochs(): void {
    this.#timer = setInterval(() => {
      const begun = this.#buffered.command('epoch-begin', {}) as { closed: number };
      this.#buffered.command('epoch-commit', { epoch: begun.closed });
    }, DEMO_EPOCH_MS);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  summary(): DemoCommonSummary {
    const c = this.#compare.engine.counters;
    const buf = this.#buffered.filters[0]!.report() as { released: number; holdTime: { p50Ms: number; p99Ms: number } };
    return {
      seconds: Number(((performance.now() - this.#t0) / 1000).toFixed(2)),
      compared: { primary: c.primary.in, secondary: c.secondary.in },
      released: leaveReasons(c.primary),
      checkpoints: { ...this.checkpoints },
      divergence: this.divergences[0] ?? null,
      epochsCommitted: this.epochsCommitted,
      buffer: { released: buf.released, holdP50Ms: buf.holdTime.p50Ms, holdP99Ms: buf.holdTime.p99Ms },
    };
  }

  /** The live page's extra fields. */
  page(): Record<string, unknown> {
    return { divergences: this.divergences, epochs: this.epochs.slice(-50) };
  }
}

function ms(v: number): string {
  return v >= 10 ? v.toFixed(0) : v.toFixed(1);
}

/** The summary lines both demos print: compared, released, checkpoints, epochs. */
export function commonLines(s: DemoCommonSummary): { compared: string; released: string; checkpoints: string; epochs: string } {
  return {
    compared: `  compared      ${s.compared.primary} primary and ${s.compared.secondary} secondary frames`,
    released: `  released      ${Object.entries(s.released).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ')}`,
    checkpoints: `  checkpoints   ${Object.entries(s.checkpoints).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}`,
    epochs: `  epochs        ${s.epochsCommitted} committed; ${s.buffer.released} frames released, hold time p50 ≤ ${ms(s.buffer.holdP50Ms)} ms, p99 ≤ ${ms(s.buffer.holdP99Ms)} ms`,
  };
}
