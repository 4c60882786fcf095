// A per-connection packet queue: a deque over an array (O(1) at both ends),
// plus insertion in TCP sequence order. QEMU keeps TCP queues sorted by
// sequence number (reference colo-proxy.md §8.2), with the lowest sequence
// compared first; among equal sequence numbers the older packet comes first.

import type { ComparePacket } from './compare-packet.ts';

/** Compaction threshold: shift the live part down once this many slots are dead. */
const COMPACT_AFTER = 1024;

/** Told when a queue goes from empty to non-empty or back (its connection moves between LRU lists). */
export interface QueueOwner {
  queueEmptinessChanged(): void;
}

export class PacketQueue {
  #items: ComparePacket[] = [];
  #head = 0;
  #owner: QueueOwner | null;

  constructor(owner: QueueOwner | null = null) {
    this.#owner = owner;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  front(): ComparePacket | undefined {
    return this.#items[this.#head];
  }

  at(i: number): ComparePacket | undefined {
    return this.#items[this.#head + i];
  }

  shift(): ComparePacket | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const p = this.#items[this.#head++]!;
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
      this.#owner?.queueEmptinessChanged();
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return p;
  }

  /** Puts a packet back at the front (after shift()). */
  unshift(p: ComparePacket): void {
    const wasEmpty = this.length === 0;
    if (this.#head > 0) this.#items[--this.#head] = p;
    else this.#items.unshift(p);
    if (wasEmpty) this.#owner?.queueEmptinessChanged();
  }

  push(p: ComparePacket): void {
    this.#items.push(p);
    if (this.length === 1) this.#owner?.queueEmptinessChanged();
  }

  /** Inserts in ascending wrap-aware sequence order; equal sequences keep arrival order. */
  insertBySeq(p: ComparePacket): void {
    const items = this.#items;
    let i = items.length;
    while (i > this.#head && ((items[i - 1]!.tcpSeq - p.tcpSeq) | 0) > 0) i--;
    if (i === items.length) items.push(p);
    else items.splice(i, 0, p);
    if (this.length === 1) this.#owner?.queueEmptinessChanged();
  }

  removeAt(i: number): ComparePacket {
    if (i === 0) return this.shift()!;
    return this.#items.splice(this.#head + i, 1)[0]!;
  }

  /** Empties the queue, returning its packets in queue order. */
  drain(): ComparePacket[] {
    const out = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    if (out.length > 0) this.#owner?.queueEmptinessChanged();
    return out;
  }

  /** Oldest creation time in the queue (the queue may be in sequence order, not time order). */
  oldestMs(): number {
    let m = Infinity;
    for (let i = this.#head; i < this.#items.length; i++) {
      const t = this.#items[i]!.createdMs;
      if (t < m) m = t;
    }
    return m;
  }
}
