// `-f record,log=FILE[,sync=…][,segment-bytes=N][,order=log-first|forward-first]`:
// the recorder as a filter, so a chain can record and buffer at once, and
// `netrr record` is a chain with this one filter. Each frame is logged as
// received from its side (rx: the guest, port 0; tx: the network, port 1).
//  - log-first (default): the frame is consumed and passed on once the write
//    of its group commit has completed (and its sync, under sync=always):
//    every frame that ever left the chain is in the log, whatever kills netrr.
//  - forward-first: the frame passes on at once, up to one group commit
//    (1 ms) before it is written.
// A write error on the log is fatal: both sides stop being read, frames
// waiting for that write are dropped (counted), and the chain is told.
// When the disk falls behind, both sides pause.

import { type CounterTree, numericFields } from '../../engine/counter-tree.ts';
import { DIR_FROM_PORT } from '../../codec/netrr-log.ts';
import type { NetrrError } from '../../errors.ts';
import { FILTER_CONSUMED, FILTER_PASS, type Filter, type FilterCommand, type FilterContext, type FilterDirection, type FilterQueue, type FilterResult, metaDir, metaVnet, packMeta } from '../../engine/filters/filter.ts';
import { FrameFifo } from '../../engine/frame-fifo.ts';
import type { Clock } from '../../io/clock.ts';
import { LOG_COMMIT_DELAY_MS, LOG_COMMIT_NOW, LogWriter, type SyncPolicy } from '../../io/log-writer.ts';

export const PORT_GUEST = 0;
export const PORT_UPSTREAM = 1;

export type RecordOrder = 'log-first' | 'forward-first';

export interface RecordConfig {
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  readonly log: string;
  readonly sync: SyncPolicy | undefined;
  readonly segmentBytes: number | undefined;
  readonly order: RecordOrder;
}

export class RecordCounters {
  /** Frames passed on after their log write completed (log-first). */
  forwardedAfterLog = 0;
  /** Frames not passed on because the log refused them (disk too far behind, writer failed or closed). */
  notLogged = 0;
  /** Frames that were waiting for a log write that failed: never passed on. */
  lostToLogError = 0;
}

export class RecordFilter implements Filter {
  readonly kind = 'record';
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly commands: Record<string, FilterCommand> = {
    'log-rotate': () => this.log.rotateNow(),
  };
  readonly config: RecordConfig;
  readonly log: LogWriter;
  readonly counters = new RecordCounters();
  #ctx: FilterContext;
  /** Frames waiting for their log write, in sequence order: meta = direction and vnet length, at = seq. */
  #held = new FrameFifo();

  private constructor(config: RecordConfig, log: LogWriter, ctx: FilterContext) {
    this.config = config;
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.log = log;
    this.#ctx = ctx;
    log.onPressure = (high) => {
      ctx.holdGuest(high);
      ctx.holdNetwork(high);
    };
    log.onWritten = (seq) => this.#onWritten(seq);
    log.onError = (err) => this.#onError(err);
  }

  static async open(config: RecordConfig, ctx: FilterContext, clock?: Clock): Promise<RecordFilter> {
    const o: { segmentBytes?: number; sync?: SyncPolicy; clock?: Clock; commitDelayMs: number } = {
      commitDelayMs: config.order === 'log-first' ? LOG_COMMIT_NOW : LOG_COMMIT_DELAY_MS,
    };
    if (config.segmentBytes !== undefined) o.segmentBytes = config.segmentBytes;
    if (config.sync !== undefined) o.sync = config.sync;
    if (clock !== undefined) o.clock = clock;
    return new RecordFilter(config, await LogWriter.create(config.log, o), ctx);
  }

  receive(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number): FilterResult {
    const seq = this.log.append(dir === 'rx' ? PORT_GUEST : PORT_UPSTREAM, DIR_FROM_PORT, 0, vnetHdrLen > 0 ? frame.subarray(vnetHdrLen) : frame);
    if (seq < 0) {
      this.counters.notLogged++;
      return FILTER_CONSUMED;
    }
    if (this.config.order === 'forward-first') return FILTER_PASS;
    this.#held.push(frame, packMeta(dir, vnetHdrLen), seq);
    return FILTER_CONSUMED;
  }

  #onWritten(lastSeq: number): void {
    const q = this.#held;
    while (q.length > 0 && q.headAt() <= lastSeq) {
      const f = q.shift();
      this.counters.forwardedAfterLog++;
      this.#ctx.passOn(metaDir(q.lastMeta), f, metaVnet(q.lastMeta));
    }
  }

  #onError(err: NetrrError): void {
    // Nothing more can be logged, so nothing more may pass.
    this.#ctx.holdGuest(true);
    this.#ctx.holdNetwork(true);
    this.counters.lostToLogError += this.#held.clear();
    this.#ctx.fatal(err);
  }

  /** Frames logged but not yet passed on (log-first). */
  get held(): number {
    return this.#held.length;
  }

  /** Whatever is appended gets written, and so passed on (log-first), before the sides close. */
  async shutdown(): Promise<void> {
    if (this.log.error === null) await this.log.drain();
  }

  async close(): Promise<void> {
    await this.log.close();
  }

  counterTree(): CounterTree {
    const l = this.log;
    return { held: this.held, ...numericFields(this.counters), log: { records: l.records, bytes: l.bytes, segments: l.segments, written: l.written, syncs: l.syncs, pendingBytes: l.pendingBytes, refused: numericFields(l.refused) } };
  }

  report(): Record<string, unknown> {
    return { id: this.id, kind: this.kind, queue: this.queue, status: this.status ? 'on' : 'off', order: this.config.order, held: this.held, ...this.counters, log: this.log.status() };
  }
}
