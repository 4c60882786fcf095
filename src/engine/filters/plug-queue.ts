// Linux sch_plug (net/sched/sch_plug.c), exactly: the qdisc Remus uses to
// hold a guest's output until the checkpoint that produced it commits
// (reference output-buffering.md). Release is by packet count from the head,
// not by epoch markers, with the kernel's quirks kept on purpose:
//  - a second BUFFER before RELEASE_ONE releases the older epoch one epoch late;
//  - packets queued in indefinite mode were never counted and skew later counts;
//  - tail drops past the byte limit are invisible to the epoch counters.
// Pure: frames in, frames out through `release`; no clock. Each frame carries
// two numbers of the caller's (`meta`: its direction and vnet length; `at`:
// its arrival time) so that no object is made per frame.

import { FrameFifo } from '../frame-fifo.ts';

/** sch_plug's init limit is (tx_queue_len ?: 100) × MTU bytes; Remus's setup sets 10 000 000 (output-buffering.md). */
export const PLUG_DEFAULT_LIMIT_BYTES = 10_000_000;

export class PlugCounters {
  enqueued = 0;
  released = 0;
  /** Tail drops: the frame would have taken the backlog past `limit` (qdisc_drop). */
  overlimits = 0;
}

export class PlugQueue {
  limit: number;
  readonly counters = new PlugCounters();
  // The kernel's state (struct plug_sched_data).
  unplugIndefinite = false;
  pktsCurrentEpoch = 0;
  pktsLastEpoch = 0;
  pktsToRelease = 0;
  /** The kernel starts throttled (plug_init). */
  throttled = true;
  #q = new FrameFifo();
  readonly #release: (frame: Uint8Array, meta: number, at: number) => void;

  constructor(release: (frame: Uint8Array, meta: number, at: number) => void, limitBytes = PLUG_DEFAULT_LIMIT_BYTES) {
    this.#release = release;
    this.limit = limitBytes;
  }

  get backlog(): number {
    return this.#q.length;
  }

  get backlogBytes(): number {
    return this.#q.bytes;
  }

  /** plug_enqueue; true when queued, false when tail-dropped. Then the device dequeues what it may. */
  enqueue(item: Uint8Array, meta = 0, at = 0): boolean {
    this.counters.enqueued++;
    if (this.backlogBytes + item.length <= this.limit) {
      if (!this.unplugIndefinite) this.pktsCurrentEpoch++;
      this.#q.push(item, meta, at);
      this.#run();
      return true;
    }
    this.counters.overlimits++;
    return false;
  }

  /** TCQ_PLUG_BUFFER: start a new epoch. */
  buffer(): void {
    this.pktsLastEpoch = this.pktsCurrentEpoch;
    this.pktsCurrentEpoch = 0;
    if (this.unplugIndefinite) this.throttled = true;
    this.unplugIndefinite = false;
  }

  /** TCQ_PLUG_RELEASE_ONE: release the previous epoch's count of packets from the head. */
  releaseOne(): void {
    this.pktsToRelease += this.pktsLastEpoch;
    this.pktsLastEpoch = 0;
    this.throttled = false;
    this.#run();
  }

  /** TCQ_PLUG_RELEASE_INDEFINITE: pass-through. */
  releaseIndefinite(): void {
    this.unplugIndefinite = true;
    this.pktsToRelease = 0;
    this.pktsLastEpoch = 0;
    this.pktsCurrentEpoch = 0;
    this.throttled = false;
    this.#run();
  }

  /** TCQ_PLUG_LIMIT: the byte limit only; queued packets stay. */
  setLimit(bytes: number): void {
    this.limit = bytes;
  }

  /** plug_dequeue, called until it returns nothing (the device is always ready here). */
  #run(): void {
    for (;;) {
      if (this.throttled) return;
      if (!this.unplugIndefinite) {
        if (this.pktsToRelease === 0) {
          this.throttled = true;
          return;
        }
        this.pktsToRelease--;
      }
      if (this.#q.length === 0) return; // qdisc_dequeue_head on an empty queue
      const item = this.#q.shift();
      const meta = this.#q.lastMeta;
      this.counters.released++;
      this.#release(item, meta, this.#q.lastAt);
    }
  }

  /** Hands every queued frame to `fn`, head first, and empties the queue (a flush by choice, not a release by the rules). */
  drain(fn: (frame: Uint8Array, meta: number, at: number) => void): number {
    return this.#q.clear(fn);
  }
}
