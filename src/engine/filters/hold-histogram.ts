// Hold time (enqueue → release) of buffered frames, in decade buckets: cheap
// to update per frame (a few comparisons), enough to tell a 20 ms epoch from
// a stuck one, and p50/p99 estimated from the bucket bounds.

/** Upper bounds of the buckets, in ms; the last bucket is everything above. */
export const HOLD_BUCKETS_MS = [0.1, 1, 10, 100, 1000, 10_000] as const;

export class HoldHistogram {
  readonly counts = new Array<number>(HOLD_BUCKETS_MS.length + 1).fill(0);
  total = 0;
  maxMs = 0;
  /** Sum of every hold time (a Prometheus histogram's _sum). */
  sumMs = 0;

  add(ms: number): void {
    this.sumMs += ms;
    let i = 0;
    while (i < HOLD_BUCKETS_MS.length && ms > HOLD_BUCKETS_MS[i]!) i++;
    this.counts[i]!++;
    this.total++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** The upper bound of the bucket holding quantile q (maxMs for the last bucket). */
  quantileMs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i < HOLD_BUCKETS_MS.length ? Math.min(HOLD_BUCKETS_MS[i]!, this.maxMs) : this.maxMs;
    }
    return this.maxMs;
  }

  toJSON(): Record<string, unknown> {
    const buckets: Record<string, number> = {};
    HOLD_BUCKETS_MS.forEach((b, i) => (buckets[`le${b}ms`] = this.counts[i]!));
    buckets.more = this.counts[HOLD_BUCKETS_MS.length]!;
    return { count: this.total, p50Ms: this.quantileMs(0.5), p99Ms: this.quantileMs(0.99), maxMs: this.maxMs, buckets };
  }
}
