// Rate limit for operator-facing lines (stderr): the first line of a kind is
// shown at once, repeats within the window are counted, and one summary line
// per kind reports them when the window ends. A reconnect storm printed 7 300
// lines in 10 s before this (issue 8); now it prints one line and one summary
// per kind and window. Pure: time comes in as a number.

/** How long repeats of one kind of line are counted before a summary. */
export const LINE_SUMMARY_WINDOW_MS = 5000;

interface Kind {
  windowStartMs: number;
  suppressed: number;
  last: string;
}

const NOTHING: readonly string[] = [];

function summary(k: Kind, nowMs: number): string {
  return `${k.suppressed} more like this in ${((nowMs - k.windowStartMs) / 1000).toFixed(1)} s, the last: ${k.last}`;
}

export class LineLimiter {
  readonly windowMs: number;
  /** Lines counted instead of shown, over the limiter's life. */
  suppressedTotal = 0;
  #kinds = new Map<string, Kind>();

  constructor(windowMs = LINE_SUMMARY_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /**
   * The lines to show now: this line when it opens a window (after the
   * summary of the kind's previous window, if that one counted repeats), or
   * nothing when it repeats within its kind's window (counted).
   */
  offer(kind: string, line: string, nowMs: number): readonly string[] {
    const k = this.#kinds.get(kind);
    if (k !== undefined && nowMs - k.windowStartMs < this.windowMs) {
      k.suppressed++;
      k.last = line;
      this.suppressedTotal++;
      return NOTHING;
    }
    this.#kinds.set(kind, { windowStartMs: nowMs, suppressed: 0, last: line });
    return k !== undefined && k.suppressed > 0 ? [summary(k, nowMs), line] : [line];
  }

  /**
   * Summary lines for every kind whose window has ended (all kinds when
   * `all`), oldest first; their windows close. Call it on a timer and at exit.
   */
  flush(nowMs: number, all = false): string[] {
    const out: string[] = [];
    for (const [kind, k] of this.#kinds) {
      if (!all && nowMs - k.windowStartMs < this.windowMs) continue;
      if (k.suppressed > 0) out.push(summary(k, nowMs));
      this.#kinds.delete(kind);
    }
    return out;
  }
}
