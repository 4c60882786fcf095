// Appends records to a netrr log (src/codec/netrr-log.ts) as they come:
// encoded into a large buffer, written once per event-loop turn (group commit),
// synced by policy, rotated into segments FILE, FILE.1, FILE.2 … by size.
// A clean close adds the index and footer; a killed writer leaves a log whose
// every complete record is still readable (`netrr log verify`).

import { open, type FileHandle } from 'node:fs/promises';
import { NetrrError, fromSystemError } from '../errors.ts';
import {
  INDEX_EVERY,
  LOG_HEADER_BYTES,
  LOG_VERSION,
  REC_FOOTER,
  REC_FRAME,
  REC_INDEX,
  encodeFooterPayload,
  encodeIndexPayload,
  encodeLogHeader,
  encodeRecordAt,
  recordBytes,
} from '../codec/netrr-log.ts';
import { type Clock, systemClock } from '../engine/wall-clock.ts';
import { OutputBuffer } from '../pcap/output-buffer.ts';

export type SyncPolicy = { readonly kind: 'none' } | { readonly kind: 'always' } | { readonly kind: 'interval'; readonly ms: number };

export const DEFAULT_SEGMENT_BYTES = 1024 * 1024 * 1024;
/**
 * Group commit: appended records are written at most this long after the
 * first of them. A per-turn commit (setImmediate) made one write per frame
 * when frames trickle in, and its completions raised the record path's p99
 * from 66 µs (bridge alone) to about 300 µs (bench/log.ts).
 */
export const LOG_COMMIT_DELAY_MS = 1;
/** Unwritten bytes above which the writer asks its sources to pause. */
export const LOG_HIGH_WATER_BYTES = 32 * 1024 * 1024;
/** Unwritten bytes above which records are refused (counted, never silent). */
export const LOG_HARD_LIMIT_BYTES = 256 * 1024 * 1024;

export function parseSyncPolicy(text: string): SyncPolicy {
  if (text === 'none') return { kind: 'none' };
  if (text === 'always') return { kind: 'always' };
  const m = /^interval:(\d+)$/.exec(text);
  if (m !== null && Number(m[1]) > 0) return { kind: 'interval', ms: Number(m[1]) };
  throw new NetrrError('ERR_BAD_OPTION', `--sync must be none, always or interval:MS, not "${text}"`);
}

export function segmentPath(base: string, segment: number): string {
  return segment === 0 ? base : `${base}.${segment}`;
}

export class LogWriter {
  readonly path: string;
  readonly segmentBytes: number;
  readonly sync: SyncPolicy;
  records = 0;
  bytes = 0;
  syncs = 0;
  segments = 0;
  /** Records refused because the disk fell LOG_HARD_LIMIT_BYTES behind. */
  droppedOverflow = 0;
  error: Error | null = null;
  /** Called when unwritten bytes cross the high-water mark (true) and drain below it (false). */
  onPressure: (high: boolean) => void = () => {};
  #clock: Clock;
  #fh: FileHandle | null = null;
  #out = new OutputBuffer();
  #chain: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #scheduled = false;
  #pressure = false;
  #segment = -1;
  #segFill = 0;
  #segCreatedMs = 0;
  #segFirstSeq = 0;
  #segRecords = 0;
  #segFirstTs = -1;
  #segLastTs = 0;
  #segLastSeq = -1;
  #index: [number, number][] = [];
  #seq = 0;
  #lastSyncMs = 0;
  #closed = false;

  private constructor(path: string, segmentBytes: number, sync: SyncPolicy, clock: Clock) {
    this.path = path;
    this.segmentBytes = segmentBytes;
    this.sync = sync;
    this.#clock = clock;
  }

  static async create(path: string, options: { segmentBytes?: number; sync?: SyncPolicy; clock?: Clock } = {}): Promise<LogWriter> {
    const w = new LogWriter(path, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, options.sync ?? { kind: 'interval', ms: 100 }, options.clock ?? systemClock);
    try {
      w.#fh = await open(path, 'w', 0o644);
    } catch (e) {
      throw fromSystemError(e, path);
    }
    w.#beginSegment();
    return w;
  }

  get pendingBytes(): number {
    return this.#inFlight + this.#out.fill;
  }

  get nextSeq(): number {
    return this.#seq;
  }

  /** Starts the next segment in the buffer (its file is switched to in the write chain). */
  #beginSegment(): void {
    this.#segment++;
    this.#segCreatedMs = this.#clock.nowMs();
    this.#segFirstSeq = this.#seq;
    this.#segRecords = 0;
    this.#segFirstTs = -1;
    this.#segLastSeq = -1;
    this.#index = [];
    const h = encodeLogHeader({ version: LOG_VERSION, segment: this.#segment, flags: 0, firstSeq: this.#seq, createdNs: Math.round(this.#segCreatedMs * 1e6) });
    const o = this.#out.reserve(h.length);
    this.#out.buf.set(h, o);
    this.#out.fill += h.length;
    this.#segFill = LOG_HEADER_BYTES;
    this.segments++;
  }

  /**
   * Appends one frame record; returns its sequence number, or -1 when refused
   * (writer failed, closed, or too far behind: counted in droppedOverflow).
   */
  append(port: number, direction: number, flags: number, frame: Uint8Array): number {
    if (this.error !== null || this.#closed || this.pendingBytes > LOG_HARD_LIMIT_BYTES) {
      this.droppedOverflow++;
      return -1;
    }
    const size = recordBytes(frame.length);
    if (this.#segFill + size > this.segmentBytes && this.#segRecords > 0) this.#rotate();
    const ts = Math.max(0, Math.round((this.#clock.nowMs() - this.#segCreatedMs) * 1e6));
    const seq = this.#seq++;
    if (this.#segRecords % INDEX_EVERY === 0) this.#index.push([seq, this.#segFill]);
    const o = this.#out.reserve(size);
    this.#out.fill = encodeRecordAt(this.#out.buf, o, REC_FRAME, port, direction, flags, seq, ts, frame);
    this.#segFill += size;
    this.#segRecords++;
    if (this.#segFirstTs < 0) this.#segFirstTs = ts;
    this.#segLastTs = ts;
    this.#segLastSeq = seq;
    this.records++;
    this.bytes += size;
    if (this.#out.shouldFlush) this.#flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(this.#tick, LOG_COMMIT_DELAY_MS);
    }
    this.#checkPressure();
    return seq;
  }

  #tick = (): void => {
    this.#scheduled = false;
    this.#flush();
  };

  #checkPressure(): void {
    const high = this.pendingBytes > LOG_HIGH_WATER_BYTES;
    if (high !== this.#pressure) {
      this.#pressure = high;
      this.onPressure(high);
    }
  }

  /** Encodes the index and footer of the current segment into the buffer. */
  #finishSegment(): void {
    const indexOffset = this.#segFill;
    const idx = encodeIndexPayload(this.#index);
    let o = this.#out.reserve(recordBytes(idx.length));
    this.#out.fill = encodeRecordAt(this.#out.buf, o, REC_INDEX, 0, 0, 0, this.#segLastSeq < 0 ? 0 : this.#segLastSeq, 0, idx);
    this.#segFill += recordBytes(idx.length);
    const footer = encodeFooterPayload({
      records: this.#segRecords,
      firstSeq: this.#segFirstSeq,
      lastSeq: this.#segLastSeq < 0 ? 0 : this.#segLastSeq,
      firstTsNs: Math.max(0, this.#segFirstTs),
      lastTsNs: this.#segLastTs,
      indexOffset,
    });
    o = this.#out.reserve(recordBytes(footer.length));
    this.#out.fill = encodeRecordAt(this.#out.buf, o, REC_FOOTER, 0, 0, 0, this.#segLastSeq < 0 ? 0 : this.#segLastSeq, 0, footer);
    this.#segFill += recordBytes(footer.length);
  }

  #rotate(): void {
    this.#finishSegment();
    const next = segmentPath(this.path, this.#segment + 1);
    // The old segment's bytes, then close it and open the next, all in write order.
    this.#flush(true, next);
    this.#beginSegment();
  }

  #flush(closeSegment = false, nextPath: string | null = null): void {
    const chunk = this.#out.take();
    const fh = this.#fh;
    if (chunk === null && !closeSegment) return;
    const n = chunk?.length ?? 0;
    this.#inFlight += n;
    const wantSync = closeSegment || this.sync.kind === 'always' || (this.sync.kind === 'interval' && this.#clock.nowMs() - this.#lastSyncMs >= this.sync.ms);
    this.#chain = this.#chain.then(async () => {
      const h = this.#fh ?? fh;
      try {
        if (this.error === null && h !== null) {
          if (chunk !== null) await h.write(chunk);
          if (wantSync) {
            await h.datasync();
            this.syncs++;
            this.#lastSyncMs = this.#clock.nowMs();
          }
          if (closeSegment) {
            await h.close();
            this.#fh = null;
            if (nextPath !== null) this.#fh = await open(nextPath, 'w', 0o644);
          }
        }
      } catch (e) {
        this.error = e as Error;
      } finally {
        this.#inFlight -= n;
        this.#checkPressure();
      }
    });
  }

  /** Resolves when everything appended so far is written (and synced per policy). */
  async drain(): Promise<void> {
    this.#flush();
    await this.#chain;
  }

  /** Index + footer, final sync, close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#finishSegment();
    this.#flush(true);
    await this.#chain;
  }

  status(): Record<string, unknown> {
    return {
      path: this.path,
      records: this.records,
      bytes: this.bytes,
      segments: this.segments,
      syncs: this.syncs,
      pendingBytes: this.pendingBytes,
      droppedOverflow: this.droppedOverflow,
      sync: this.sync,
      error: this.error?.message ?? null,
    };
  }
}
