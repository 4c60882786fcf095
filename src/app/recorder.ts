// netrr record: a transparent netdev-in-the-middle between a guest and its
// upstream that logs both directions to a crash-safe netrr log. It is a
// chain with one filter, `record` (src/app/filters/record-filter.ts), which
// holds the ordering promise (log-first by default) and the fatal log error.

import type { NetrrError } from '../errors.ts';
import type { Clock } from '../engine/wall-clock.ts';
import type { SyncPolicy } from '../io/log-writer.ts';
import { Chain } from './chain.ts';
import { type RecordCounters, RecordFilter, type RecordOrder } from './filters/record-filter.ts';

export { PORT_GUEST, PORT_UPSTREAM, type RecordOrder } from './filters/record-filter.ts';

export interface RecorderOptions {
  readonly guest: string;
  readonly upstream: string;
  readonly log: string;
  readonly sync?: SyncPolicy;
  readonly segmentBytes?: number;
  readonly order?: RecordOrder;
  readonly clock?: Clock;
}

function syncText(p: SyncPolicy | undefined): string | undefined {
  return p === undefined ? undefined : p.kind === 'interval' ? `interval:${p.ms}` : p.kind;
}

export class Recorder {
  readonly chain: Chain;
  readonly order: RecordOrder;

  constructor(opts: RecorderOptions) {
    this.order = opts.order ?? 'log-first';
    this.chain = new Chain({
      guest: opts.guest,
      network: opts.upstream,
      networkName: 'upstream',
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
      filters: [{ kind: 'record', id: 'record', queue: 'all', status: true, log: opts.log, sync: syncText(opts.sync), segmentBytes: opts.segmentBytes, order: this.order }],
    });
  }

  /** Set by the service runner: the recording cannot go on (the log failed). */
  set onFatal(fn: (err: NetrrError) => void) {
    this.chain.onFatal = fn;
  }

  get #filter(): RecordFilter | undefined {
    return this.chain.filters[0] as RecordFilter | undefined;
  }

  get log(): RecordFilter['log'] | null {
    return this.#filter?.log ?? null;
  }

  get counters(): RecordCounters | undefined {
    return this.#filter?.counters;
  }

  /** Frames logged but not yet forwarded (log-first). */
  get held(): number {
    return this.#filter?.held ?? 0;
  }

  start(): Promise<void> {
    return this.chain.start();
  }

  status(): Record<string, unknown> {
    const f = this.#filter;
    return { ...this.chain.status(), order: this.order, held: this.held, recorder: f !== undefined ? { ...f.counters } : null, log: f?.log.status() ?? null };
  }

  stop(): Promise<void> {
    return this.chain.stop();
  }
}
