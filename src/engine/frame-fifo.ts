// A FIFO of frames, each with two numbers of its owner's (`meta`: direction,
// vnet length, side…; `at`: arrival time or a sequence number), kept in
// parallel arrays from a moving head so that no object is made per frame.
// Compacts once the dead head is large and at least half the arrays. Used by
// ports (backlogs), the recorder (frames waiting for their log write) and the
// buffer filters (held output).

/** Dead slots at the head before the arrays are compacted. */
const COMPACT_AFTER = 4096;
const EMPTY = new Uint8Array(0);

export class FrameFifo {
  /** Bytes of the frames held. */
  bytes = 0;
  /** meta and at of the frame the last shift() or pop() removed. */
  lastMeta = 0;
  lastAt = 0;
  #frames: Uint8Array[] = [];
  #meta: number[] = [];
  #at: number[] = [];
  #head = 0;

  get length(): number {
    return this.#frames.length - this.#head;
  }

  push(frame: Uint8Array, meta: number, at = 0): void {
    this.#frames.push(frame);
    this.#meta.push(meta);
    this.#at.push(at);
    this.bytes += frame.length;
  }

  /** `at` of the head frame (the queue must not be empty). */
  headAt(): number {
    return this.#at[this.#head]!;
  }

  /** Removes the head frame (the queue must not be empty); its numbers are in lastMeta and lastAt. */
  shift(): Uint8Array {
    const i = this.#head++;
    const f = this.#frames[i]!;
    this.#frames[i] = EMPTY;
    this.lastMeta = this.#meta[i]!;
    this.lastAt = this.#at[i]!;
    this.bytes -= f.length;
    if (this.#head === this.#frames.length) this.#reset();
    else if (this.#head > COMPACT_AFTER && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#meta = this.#meta.slice(this.#head);
      this.#at = this.#at.slice(this.#head);
      this.#head = 0;
    }
    return f;
  }

  /** Removes the tail frame (the queue must not be empty); its numbers are in lastMeta and lastAt. */
  pop(): Uint8Array {
    const f = this.#frames.pop()!;
    this.lastMeta = this.#meta.pop()!;
    this.lastAt = this.#at.pop()!;
    this.bytes -= f.length;
    if (this.#head === this.#frames.length) this.#reset();
    return f;
  }

  /** Empties the queue, handing each frame to `fn` head first when given; returns how many there were. */
  clear(fn?: (frame: Uint8Array, meta: number, at: number) => void): number {
    const n = this.length;
    if (fn !== undefined) for (let i = this.#head; i < this.#frames.length; i++) fn(this.#frames[i]!, this.#meta[i]!, this.#at[i]!);
    this.#reset();
    return n;
  }

  #reset(): void {
    this.#frames = [];
    this.#meta = [];
    this.#at = [];
    this.#head = 0;
    this.bytes = 0;
  }
}
