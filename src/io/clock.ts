// The one wall clock: milliseconds since the Unix epoch, from the epoch at
// start plus a monotonic offset (never steps backwards with NTP). Engines
// below src/io never read it: time comes into them as a number.

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
