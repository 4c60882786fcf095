// netrr record: a transparent netdev-in-the-middle between a guest and its
// upstream that logs both directions to a crash-safe netrr log. It is a
// chain with one filter, `record` (src/app/filters/record-filter.ts), which
// holds the ordering promise (log-first by default) and the fatal log error.

import type { Clock } from '../io/clock.ts';
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

export class Recorder extends Chain {
  override readonly kind = 'record';
  readonly order: RecordOrder;

  constructor(opts: RecorderOptions) {
    const order = opts.order ?? 'log-first';
    super({
      guest: opts.guest,
      network: opts.upstream,
      networkName: 'upstream',
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
      filters: [{ kind: 'record', id: 'record', queue: 'all', status: true, log: opts.log, sync: syncText(opts.sync), segmentBytes: opts.segmentBytes, order }],
    });
    this.order = order;
  }

  get #record(): RecordFilter | undefined {
    return this.filters[0] as RecordFilter | undefined;
  }

  get log(): RecordFilter['log'] | null {
    return this.#record?.log ?? null;
  }

  get recordCounters(): RecordCounters | undefined {
    return this.#record?.counters;
  }

  /** Frames logged but not yet forwarded (log-first). */
  get held(): number {
    return this.#record?.held ?? 0;
  }

  override status(): Record<string, unknown> {
    const f = this.#record;
    return { ...super.status(), order: this.order, held: this.held, recorder: f !== undefined ? { ...f.counters } : null, log: f?.log.status() ?? null };
  }
}
