// 64-bit timestamp arithmetic without BigInt: pcapng timestamps are a 64-bit
// count of units (10^-k or 2^-k s). Nanosecond counts of today exceed 2^53,
// so split them into 16-bit digits and divide exactly.

/** Result registers of divide64 (avoids allocating a pair per packet). */
export const div64 = { quotient: 0, remainder: 0 };

/**
 * Exact floor((hi·2^32 + lo) / d) into div64.quotient and the remainder into
 * div64.remainder, for 1 ≤ d < 2^36 and a quotient below 2^53.
 */
export function divide64(hi: number, lo: number, d: number): void {
  // Long division in base 2^16: each partial dividend stays below d·2^16 < 2^52.
  let cur = hi >>> 16;
  let qd = Math.floor(cur / d);
  let r = cur - qd * d;
  let q = qd;
  cur = r * 65536 + (hi & 0xffff);
  qd = Math.floor(cur / d);
  r = cur - qd * d;
  q = q * 65536 + qd;
  cur = r * 65536 + (lo >>> 16);
  qd = Math.floor(cur / d);
  r = cur - qd * d;
  q = q * 65536 + qd;
  cur = r * 65536 + (lo & 0xffff);
  qd = Math.floor(cur / d);
  r = cur - qd * d;
  div64.quotient = q * 65536 + qd;
  div64.remainder = r;
}

/** Splits sec·10^9 + nsec into 32-bit halves, exact for sec < 2^34. */
export function nanosToHiLo(sec: number, nsec: number, out: { hi: number; lo: number }): void {
  const secHi = Math.floor(sec / 65536);
  const secLo = sec - secHi * 65536;
  const x = secLo * 1e9 + nsec; // < 2^46
  const y = secHi * 1e9; // < 2^48
  const yHi = Math.floor(y / 65536);
  const yLo = y - yHi * 65536;
  const m = yLo * 65536 + x; // < 2^47
  const mHi = Math.floor(m / 4294967296);
  out.hi = yHi + mHi;
  out.lo = m - mHi * 4294967296;
}

/** Splits epoch milliseconds into seconds + nanoseconds held in `out` (no allocation per frame). */
export function splitEpochMs(ms: number, out: { sec: number; nsec: number }): void {
  const sec = Math.floor(ms / 1000);
  out.sec = sec;
  out.nsec = Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6));
}
