// A per-connection packet queue: a ring buffer (O(1) at both ends, no
// allocation once grown), plus insertion in TCP sequence order. QEMU keeps
// TCP queues sorted by sequence number (reference colo-proxy.md §8.2), with
// the lowest sequence compared first; among equal sequence numbers the older
// packet comes first.

import type { ComparePacket } from './compare-packet.ts';

/** First capacity; doubles as needed (a power of two, for the index mask). */
const INITIAL_CAPACITY = 8;

/** Told when a queue goes from empty to non-empty or back (its connection moves between LRU lists). */
export interface QueueOwner {
  queueEmptinessChanged(): void;
}

export class PacketQueue {
  #ring: (ComparePacket | undefined)[] = new Array<ComparePacket | undefined>(INITIAL_CAPACITY);
  #mask = INITIAL_CAPACITY - 1;
  #head = 0;
  #length = 0;
  #owner: QueueOwner | null;

  constructor(owner: QueueOwner | null = null) {
    this.#owner = owner;
  }

  get length(): number {
    return this.#length;
  }

  front(): ComparePacket | undefined {
    return this.#length > 0 ? this.#ring[this.#head] : undefined;
  }

  at(i: number): ComparePacket | undefined {
    return i >= 0 && i < this.#length ? this.#ring[(this.#head + i) & this.#mask] : undefined;
  }

  shift(): ComparePacket | undefined {
    if (this.#length === 0) return undefined;
    const p = this.#ring[this.#head];
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    if (--this.#length === 0) this.#owner?.queueEmptinessChanged();
    return p;
  }

  /** Puts a packet back at the front. */
  unshift(p: ComparePacket): void {
    this.#reserve();
    this.#head = (this.#head - 1) & this.#mask;
    this.#ring[this.#head] = p;
    if (++this.#length === 1) this.#owner?.queueEmptinessChanged();
  }

  push(p: ComparePacket): void {
    this.#reserve();
    this.#ring[(this.#head + this.#length) & this.#mask] = p;
    if (++this.#length === 1) this.#owner?.queueEmptinessChanged();
  }

  /** Inserts in ascending wrap-aware sequence order; equal sequences keep arrival order. */
  insertBySeq(p: ComparePacket): void {
    this.#reserve();
    const ring = this.#ring;
    const mask = this.#mask;
    // From the back: in-order arrival (the common case) moves nothing.
    let i = this.#length;
    while (i > 0) {
      const prev = ring[(this.#head + i - 1) & mask]!;
      if (((prev.tcpSeq - p.tcpSeq) | 0) <= 0) break;
      ring[(this.#head + i) & mask] = prev;
      i--;
    }
    ring[(this.#head + i) & mask] = p;
    if (++this.#length === 1) this.#owner?.queueEmptinessChanged();
  }

  /** Removes and returns the i-th packet (0 = front). */
  removeAt(i: number): ComparePacket {
    if (i === 0) return this.shift()!;
    const ring = this.#ring;
    const mask = this.#mask;
    const p = ring[(this.#head + i) & mask]!;
    for (let k = i; k < this.#length - 1; k++) ring[(this.#head + k) & mask] = ring[(this.#head + k + 1) & mask];
    ring[(this.#head + this.#length - 1) & mask] = undefined;
    this.#length--;
    return p;
  }

  /** Empties the queue, returning its packets in queue order. */
  drain(): ComparePacket[] {
    const out: ComparePacket[] = [];
    for (let i = 0; i < this.#length; i++) {
      const k = (this.#head + i) & this.#mask;
      out.push(this.#ring[k]!);
      this.#ring[k] = undefined;
    }
    const had = this.#length > 0;
    this.#head = 0;
    this.#length = 0;
    if (had) this.#owner?.queueEmptinessChanged();
    return out;
  }

  /** Oldest creation time in the queue (the queue may be in sequence order, not time order). */
  oldestMs(): number {
    let m = Infinity;
    for (let i = 0; i < this.#length; i++) {
      const t = this.#ring[(this.#head + i) & this.#mask]!.createdMs;
      if (t < m) m = t;
    }
    return m;
  }

  #reserve(): void {
    const cap = this.#ring.length;
    if (this.#length < cap) return;
    const next = new Array<ComparePacket | undefined>(cap * 2);
    for (let i = 0; i < this.#length; i++) next[i] = this.#ring[(this.#head + i) & this.#mask];
    this.#ring = next;
    this.#mask = cap * 2 - 1;
    this.#head = 0;
  }
}
