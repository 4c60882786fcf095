// Timestamps for captured frames without per-frame allocation: wall-clock
// epoch at start plus a monotonic offset, split into seconds + nanoseconds.

export interface Clock {
  /** Milliseconds since the Unix epoch, fractional. */
  nowMs(): number;
}

export const systemClock: Clock = {
  nowMs: (() => {
    const base = Date.now() - performance.now();
    return () => base + performance.now();
  })(),
};

/** Splits epoch milliseconds into [sec, nsec] held in `out`. */
export function splitEpochMs(ms: number, out: { sec: number; nsec: number }): void {
  const sec = Math.floor(ms / 1000);
  out.sec = sec;
  out.nsec = Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6));
}
