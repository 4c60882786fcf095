// Output held in numbered epochs until a checkpoint commits them: netrr's
// answer to sch_plug's count-based release (reference output-buffering.md).
//  - epochBegin() closes the open epoch and opens the next; it returns the new id.
//  - commit(id) releases, in order, every frame of the closed epochs up to id.
//  - abort(id) discards epoch id and every later one, the open one included
//    (failover to a replica that never produced that output), then opens a new epoch.
// Any number of epochs may be outstanding. Limits (frames, bytes) with an
// overflow policy: drop-tail (sch_plug parity), checkpoint (ask the
// controller to commit early; nothing dropped until the hard bound) or
// backpressure (ask the runtime to stop reading the guest; nothing dropped
// until the hard bound). Pure: time comes in as a number (hold times).

import { NetrrError } from '../../errors.ts';
import { FrameFifo } from '../frame-fifo.ts';

export type OverflowPolicy = 'drop-tail' | 'checkpoint' | 'backpressure';

/** Past this, whatever the policy, frames are dropped (counted hardLimit): memory stays bounded. */
export const EPOCH_HARD_LIMIT_BYTES = 256 * 1024 * 1024;

export interface EpochBufferConfig {
  readonly limitFrames: number;
  readonly limitBytes: number;
  readonly overflow: OverflowPolicy;
  readonly hardLimitBytes: number;
}

export interface EpochSink {
  /** `meta` is the caller's number given at enqueue (direction and vnet length). */
  release(frame: Uint8Array, meta: number, heldMs: number): void;
  /** Overflow under policy checkpoint (true: over the limit) or backpressure (true: stop reading; false: go on). */
  overflow(on: boolean): void;
}

export class EpochDrops {
  /** Over the limit under drop-tail (sch_plug's overlimits). */
  overlimit = 0;
  /** Over the hard bound under checkpoint or backpressure. */
  hardLimit = 0;
  /** Discarded by epoch-abort. */
  aborted = 0;
}

export class EpochCounters {
  enqueued = 0;
  released = 0;
  readonly dropped = new EpochDrops();
  /** Times the limit was crossed (any policy). */
  overlimits = 0;
  epochsCommitted = 0;
  epochsAborted = 0;
}

interface Epoch {
  id: number;
  frames: number;
}

export class EpochBuffer {
  readonly config: EpochBufferConfig;
  readonly counters = new EpochCounters();
  #sink: EpochSink;
  /** Held frames, oldest first: meta as given, at = arrival time. */
  #q = new FrameFifo();
  /** Oldest first; the last one is open. */
  #epochs: Epoch[] = [{ id: 1, frames: 0 }];
  #nextId = 2;
  #overflowing = false;

  constructor(config: EpochBufferConfig, sink: EpochSink) {
    this.config = config;
    this.#sink = sink;
  }

  get backlogFrames(): number {
    return this.#q.length;
  }

  get backlogBytes(): number {
    return this.#q.bytes;
  }

  get openEpoch(): number {
    return this.#epochs[this.#epochs.length - 1]!.id;
  }

  /** Closed epochs not yet committed, oldest first, with their frame counts. */
  outstanding(): { id: number; frames: number }[] {
    return this.#epochs.slice(0, -1).map((e) => ({ ...e }));
  }

  /** Holds a frame in the open epoch; false when it was dropped (counted). */
  enqueue(frame: Uint8Array, meta: number, nowMs: number): boolean {
    const c = this.counters;
    const cfg = this.config;
    c.enqueued++;
    const over = this.backlogFrames + 1 > cfg.limitFrames || this.backlogBytes + frame.length > cfg.limitBytes;
    if (over) {
      c.overlimits++;
      if (cfg.overflow === 'drop-tail') {
        c.dropped.overlimit++;
        return false;
      }
      if (this.backlogBytes + frame.length > cfg.hardLimitBytes) {
        c.dropped.hardLimit++;
        return false;
      }
      this.#setOverflow(true);
    }
    this.#q.push(frame, meta, nowMs);
    this.#epochs[this.#epochs.length - 1]!.frames++;
    return true;
  }

  epochBegin(): number {
    const id = this.#nextId++;
    this.#epochs.push({ id, frames: 0 });
    return id;
  }

  /** Releases every closed epoch up to and including `id`; returns the frames released. */
  commit(id: number, nowMs: number): number {
    if (id >= this.openEpoch) throw new NetrrError('ERR_BAD_OPTION', `epoch ${id} is ${id === this.openEpoch ? 'still open: epoch-begin first' : 'not begun yet'}`);
    let n = 0;
    while (this.#epochs.length > 1 && this.#epochs[0]!.id <= id) {
      n += this.#epochs.shift()!.frames;
      this.counters.epochsCommitted++;
    }
    for (let i = 0; i < n; i++) this.#releaseHead(nowMs);
    this.#checkOverflow();
    return n;
  }

  /** Discards epoch `id` and all later ones (the open one too), then opens a new epoch; returns the frames dropped. */
  abort(id: number): number {
    let n = 0;
    while (this.#epochs.length > 0 && this.#epochs[this.#epochs.length - 1]!.id >= id) {
      n += this.#epochs.pop()!.frames;
      this.counters.epochsAborted++;
    }
    for (let i = 0; i < n; i++) this.#q.pop();
    this.counters.dropped.aborted += n;
    this.#epochs.push({ id: this.#nextId++, frames: 0 });
    this.#checkOverflow();
    return n;
  }

  /** Releases everything held, in order (status off, failover, shutdown by choice). */
  releaseAll(nowMs: number): number {
    const n = this.backlogFrames;
    for (let i = 0; i < n; i++) this.#releaseHead(nowMs);
    const open = this.openEpoch;
    this.#epochs = [{ id: open, frames: 0 }];
    this.#checkOverflow();
    return n;
  }

  #releaseHead(nowMs: number): void {
    const q = this.#q;
    const f = q.shift();
    this.counters.released++;
    this.#sink.release(f, q.lastMeta, nowMs - q.lastAt);
  }

  #checkOverflow(): void {
    if (this.#overflowing && this.backlogFrames <= this.config.limitFrames && this.backlogBytes <= this.config.limitBytes) this.#setOverflow(false);
  }

  #setOverflow(on: boolean): void {
    if (on === this.#overflowing) return;
    this.#overflowing = on;
    this.#sink.overflow(on);
  }

  get overflowing(): boolean {
    return this.#overflowing;
  }
}
