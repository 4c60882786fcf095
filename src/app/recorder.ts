// netrr record: a transparent netdev-in-the-middle between a guest and its
// upstream that logs both directions to a crash-safe netrr log. Port 0 is the
// guest, port 1 the upstream; each frame is logged as received from its port.
//
// Order (issue 8 item 4):
//  - log-first (default): a frame is forwarded only once the write of its
//    group commit has completed (and its sync, under --sync always). Every
//    frame the far side ever received is in the log, whatever kills netrr.
//  - forward-first: a frame is forwarded as soon as it is queued for the log,
//    up to one group commit (1 ms) before it is written; a kill -9 can lose
//    frames that were already delivered. Lower latency, weaker promise.
// A write error on the log (a full disk) is fatal: nothing more is forwarded,
// the frames waiting for that write are dropped (counted), and onFatal is told.
// When the disk falls behind, both sides pause.

import { DIR_FROM_PORT } from '../codec/netrr-log.ts';
import type { NetrrError } from '../errors.ts';
import { FrameFifo } from '../engine/frame-fifo.ts';
import { type Clock, systemClock } from '../engine/wall-clock.ts';
import { LOG_COMMIT_DELAY_MS, LOG_COMMIT_NOW, LogWriter, type SyncPolicy } from '../io/log-writer.ts';
import { Bridge, type Side } from './bridge.ts';

export const PORT_GUEST = 0;
export const PORT_UPSTREAM = 1;

export type RecordOrder = 'log-first' | 'forward-first';

export interface RecorderOptions {
  readonly guest: string;
  readonly upstream: string;
  readonly log: string;
  readonly sync?: SyncPolicy;
  readonly segmentBytes?: number;
  readonly order?: RecordOrder;
  readonly clock?: Clock;
}

export class RecorderCounters {
  /** Frames forwarded after their log write completed (log-first). */
  forwardedAfterLog = 0;
  /** Frames not forwarded because the log refused them (disk too far behind, writer failed or closed). */
  notLogged = 0;
  /** Frames that were waiting for a log write that failed: never forwarded. */
  lostToLogError = 0;
}

export class Recorder {
  readonly bridge: Bridge;
  readonly order: RecordOrder;
  readonly counters = new RecorderCounters();
  log: LogWriter | null = null;
  /** Set by the service runner: the recording cannot go on (the log failed). */
  onFatal: (err: NetrrError) => void = () => {};
  #opts: RecorderOptions;
  /** Frames waiting for their log write (log-first), in sequence order: meta = side | vnet length << 1, at = seq. */
  #held = new FrameFifo();

  constructor(opts: RecorderOptions) {
    this.#opts = opts;
    this.order = opts.order ?? 'log-first';
    this.bridge = new Bridge({
      a: opts.guest,
      b: opts.upstream,
      names: ['guest', 'upstream'],
      clock: opts.clock ?? systemClock,
      filter: (side, frame, vnetLen) => this.#onFrame(side, frame, vnetLen),
    });
  }

  /** Logs the frame; true when the bridge must not forward it now (held for its write, or refused). */
  #onFrame(side: Side, frame: Uint8Array, vnetLen: number): boolean {
    const log = this.log;
    const seq = log === null ? -1 : log.append(side === 0 ? PORT_GUEST : PORT_UPSTREAM, DIR_FROM_PORT, 0, vnetLen > 0 ? frame.subarray(vnetLen) : frame);
    if (seq < 0) {
      this.counters.notLogged++;
      return true;
    }
    if (this.order === 'forward-first') return false;
    this.#held.push(frame, side | (vnetLen << 1), seq);
    return true;
  }

  #onWritten(lastSeq: number): void {
    const q = this.#held;
    while (q.length > 0 && q.headAt() <= lastSeq) {
      const f = q.shift();
      this.bridge.forward((q.lastMeta & 1) as Side, f, q.lastMeta >>> 1);
      this.counters.forwardedAfterLog++;
    }
  }

  /** Frames logged but not yet forwarded (log-first). */
  get held(): number {
    return this.#held.length;
  }

  async start(): Promise<void> {
    const o: { segmentBytes?: number; sync?: SyncPolicy; clock?: Clock; commitDelayMs: number } = {
      commitDelayMs: this.order === 'log-first' ? LOG_COMMIT_NOW : LOG_COMMIT_DELAY_MS,
    };
    if (this.#opts.segmentBytes !== undefined) o.segmentBytes = this.#opts.segmentBytes;
    if (this.#opts.sync !== undefined) o.sync = this.#opts.sync;
    if (this.#opts.clock !== undefined) o.clock = this.#opts.clock;
    const log = await LogWriter.create(this.#opts.log, o);
    this.log = log;
    log.onPressure = (high) => this.bridge.hold('log', high);
    log.onWritten = (seq) => this.#onWritten(seq);
    log.onError = (err) => {
      // Stop reading both sides: nothing more can be logged, so nothing more may pass.
      this.bridge.hold('log-error', true);
      this.counters.lostToLogError += this.#held.clear();
      this.onFatal(err);
    };
    await this.bridge.start();
  }

  status(): Record<string, unknown> {
    return { ...this.bridge.status(), order: this.order, held: this.held, recorder: { ...this.counters }, log: this.log?.status() ?? null };
  }

  async stop(): Promise<void> {
    // Read nothing more; whatever is appended gets written (and so forwarded, log-first) before the sides close.
    this.bridge.hold('stopping', true);
    if (this.log !== null && this.log.error === null) await this.log.drain();
    await this.bridge.stop();
    await this.log?.close();
  }
}
