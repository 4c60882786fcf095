// Connections keyed by the directional 5-tuple, bounded, least recently used
// first out. QEMU clears its whole table (and, in colo-compare, every queued
// packet) once it holds more than 16384 connections (reference colo-proxy.md
// §7); we evict one connection instead, idle ones first, and hand any packets
// an evicted connection still holds back to the engine to account for.

import { type ConnKey, type PacketKind } from './compare-packet.ts';
import { PacketQueue } from './packet-queue.ts';

export const DEFAULT_MAX_CONNECTIONS = 16384;

export class Connection {
  readonly family: number;
  readonly proto: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly hash: number;
  readonly kind: PacketKind;
  readonly primary = new PacketQueue();
  readonly secondary = new PacketQueue();
  /** TCP: end of the last compared sequence (0 = nothing compared yet, as QEMU). */
  compareSeq = 0;
  /** TCP: the ACK tracked per side (QEMU: the last differing ACK queued). */
  pack = 0;
  sack = 0;
  /** Creation number (the order of QEMU's conn_list). */
  readonly serial: number;
  // hash chain and LRU list links
  nextInBucket: Connection | null = null;
  lruPrev: Connection | null = null;
  lruNext: Connection | null = null;

  constructor(key: ConnKey, serial: number) {
    this.family = key.family;
    this.proto = key.proto;
    this.src = key.src.slice();
    this.dst = key.dst.slice();
    this.sport = key.sport;
    this.dport = key.dport;
    this.hash = key.hash;
    this.kind = key.kind;
    this.serial = serial;
  }

  matches(k: ConnKey): boolean {
    if (this.hash !== k.hash || this.family !== k.family || this.proto !== k.proto || this.sport !== k.sport || this.dport !== k.dport) return false;
    const n = this.family === 6 ? 16 : this.family === 4 ? 4 : 6;
    for (let i = 0; i < n; i++) if (this.src[i] !== k.src[i] || this.dst[i] !== k.dst[i]) return false;
    return true;
  }

  get busy(): boolean {
    return this.primary.length > 0 || this.secondary.length > 0;
  }

  /** The flow as text: "udp 10.0.0.1:1234 > 10.0.0.2:5678". */
  describe(): string {
    const proto = this.proto === 6 ? 'tcp' : this.proto === 17 ? 'udp' : this.proto === 1 ? 'icmp' : this.proto === 58 ? 'icmpv6' : this.family === 0 ? 'arp' : `proto ${this.proto}`;
    if (this.family === 0) return `${proto} from ${[...this.src.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
    const addr = (a: Uint8Array): string =>
      this.family === 4 ? [...a.subarray(0, 4)].join('.') : `[${Array.from({ length: 8 }, (_, i) => ((a[2 * i]! << 8) | a[2 * i + 1]!).toString(16)).join(':')}]`;
    return `${proto} ${addr(this.src)}:${this.sport} > ${addr(this.dst)}:${this.dport}`;
  }
}

export class ConnectionTable {
  readonly maxConnections: number;
  #buckets = new Map<number, Connection>();
  #size = 0;
  #serial = 0;
  /** LRU list: head is least recently used. */
  #head: Connection | null = null;
  #tail: Connection | null = null;
  created = 0;
  evicted = 0;

  constructor(maxConnections = DEFAULT_MAX_CONNECTIONS) {
    this.maxConnections = maxConnections;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Finds or creates the connection for `key` and marks it most recently
   * used. When a new one would exceed the bound, `onEvict` receives the
   * evicted connection first (its queues still full, for accounting).
   */
  get(key: ConnKey, onEvict: (c: Connection) => void): Connection {
    let c = this.#buckets.get(key.hash) ?? null;
    while (c !== null && !c.matches(key)) c = c.nextInBucket;
    if (c !== null) {
      this.#touch(c);
      return c;
    }
    if (this.#size >= this.maxConnections) {
      const victim = this.#pickVictim();
      onEvict(victim);
      this.#remove(victim);
      this.evicted++;
    }
    c = new Connection(key, this.#serial++);
    c.nextInBucket = this.#buckets.get(key.hash) ?? null;
    this.#buckets.set(key.hash, c);
    this.#size++;
    this.created++;
    this.#append(c);
    return c;
  }

  /** Least recently used idle connection, else the least recently used one. */
  #pickVictim(): Connection {
    for (let c = this.#head; c !== null; c = c.lruNext) if (!c.busy) return c;
    return this.#head!;
  }

  #touch(c: Connection): void {
    if (this.#tail === c) return;
    this.#unlink(c);
    this.#append(c);
  }

  #append(c: Connection): void {
    c.lruPrev = this.#tail;
    c.lruNext = null;
    if (this.#tail !== null) this.#tail.lruNext = c;
    else this.#head = c;
    this.#tail = c;
  }

  #unlink(c: Connection): void {
    if (c.lruPrev !== null) c.lruPrev.lruNext = c.lruNext;
    else this.#head = c.lruNext;
    if (c.lruNext !== null) c.lruNext.lruPrev = c.lruPrev;
    else this.#tail = c.lruPrev;
    c.lruPrev = null;
    c.lruNext = null;
  }

  #remove(c: Connection): void {
    this.#unlink(c);
    let prev: Connection | null = null;
    let cur = this.#buckets.get(c.hash) ?? null;
    while (cur !== null && cur !== c) {
      prev = cur;
      cur = cur.nextInBucket;
    }
    if (cur === null) return;
    if (prev === null) {
      if (c.nextInBucket === null) this.#buckets.delete(c.hash);
      else this.#buckets.set(c.hash, c.nextInBucket);
    } else prev.nextInBucket = c.nextInBucket;
    this.#size--;
  }

  /** All connections, least recently used first. */
  *[Symbol.iterator](): IterableIterator<Connection> {
    for (let c = this.#head; c !== null; c = c.lruNext) yield c;
  }
}
