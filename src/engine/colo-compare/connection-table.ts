// Connections keyed by the directional 5-tuple, bounded, least recently used
// first out. QEMU clears its whole table (and, in colo-compare, every queued
// packet) once it holds more than 16384 connections (reference colo-proxy.md
// §7); we evict one connection instead, idle ones first, and hand any packets
// an evicted connection still holds back to the engine to account for.
// Idle and busy connections sit on two LRU lists, so choosing a victim is
// O(1): scanning one list for an idle victim made a flood of new flows with a
// silent secondary crawl at 2.8k frames/s (issue 8 item 5).

import { type ConnKey, type PacketKind } from './compare-packet.ts';
import { PacketQueue, type QueueOwner } from './packet-queue.ts';

export const DEFAULT_MAX_CONNECTIONS = 16384;

/** One replica's half of a connection: its queue and the ACK it last sent. */
export class ConnectionSide {
  readonly queue: PacketQueue;
  /** TCP: the ACK tracked (QEMU: the last differing ACK queued). */
  ack = 0;

  constructor(owner: QueueOwner) {
    this.queue = new PacketQueue(owner);
  }
}

export class Connection {
  readonly family: number;
  readonly proto: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly hash: number;
  /** The addresses as words (ConnKey.srcWords): what matches() compares. */
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
  readonly s3: number;
  readonly d0: number;
  readonly d1: number;
  readonly d2: number;
  readonly d3: number;
  readonly kind: PacketKind;
  readonly primary: ConnectionSide;
  readonly secondary: ConnectionSide;
  /** TCP: end of the last compared sequence (0 = nothing compared yet, as QEMU). */
  compareSeq = 0;
  /** Creation number (the order of QEMU's conn_list). */
  readonly serial: number;
  // hash chain and LRU list links
  nextInBucket: Connection | null = null;
  lruPrev: Connection | null = null;
  lruNext: Connection | null = null;
  /** Which LRU list it is on (kept equal to `busy` by the queues' emptiness changes). */
  onBusyList = false;
  #table: ConnectionTable;

  constructor(key: ConnKey, serial: number, table: ConnectionTable) {
    this.#table = table;
    this.primary = new ConnectionSide(this);
    this.secondary = new ConnectionSide(this);
    this.family = key.family;
    this.proto = key.proto;
    this.src = key.src.slice();
    this.dst = key.dst.slice();
    this.sport = key.sport;
    this.dport = key.dport;
    this.hash = key.hash;
    const s = key.srcWords;
    const d = key.dstWords;
    this.s0 = s[0]!;
    this.s1 = s[1]!;
    this.s2 = s[2]!;
    this.s3 = s[3]!;
    this.d0 = d[0]!;
    this.d1 = d[1]!;
    this.d2 = d[2]!;
    this.d3 = d[3]!;
    this.kind = key.kind;
    this.serial = serial;
  }

  matches(k: ConnKey): boolean {
    if (this.hash !== k.hash || this.family !== k.family || this.proto !== k.proto || this.sport !== k.sport || this.dport !== k.dport) return false;
    const s = k.srcWords;
    const d = k.dstWords;
    return this.s0 === s[0] && this.d0 === d[0] && this.s1 === s[1] && this.d1 === d[1] && this.s2 === s[2] && this.d2 === d[2] && this.s3 === s[3] && this.d3 === d[3];
  }

  get busy(): boolean {
    return this.primary.queue.length > 0 || this.secondary.queue.length > 0;
  }

  /** A queue went from empty to non-empty or back (PacketQueue calls this). */
  queueEmptinessChanged(): void {
    if (this.busy !== this.onBusyList) this.#table.moveList(this);
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

interface LruList {
  /** Least recently used. */
  head: Connection | null;
  tail: Connection | null;
}

/** Most bucket slots the table allocates (8 MiB of pointers); chains take any connections beyond. */
const MAX_BUCKETS = 1 << 20;

export class ConnectionTable {
  readonly maxConnections: number;
  /** Chained hash buckets indexed by hash & mask (an array index, no Map hashing of a heap-number key). */
  readonly #buckets: (Connection | null)[];
  readonly #mask: number;
  #size = 0;
  #serial = 0;
  #idle: LruList = { head: null, tail: null };
  #busy: LruList = { head: null, tail: null };
  created = 0;
  evicted = 0;

  constructor(maxConnections = DEFAULT_MAX_CONNECTIONS) {
    this.maxConnections = maxConnections;
    // At least twice the bound, a power of two.
    let n = 16;
    while (n < maxConnections * 2 && n < MAX_BUCKETS) n *= 2;
    this.#buckets = new Array<Connection | null>(n).fill(null);
    this.#mask = n - 1;
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
    const slot = key.hash & this.#mask;
    let c: Connection | null = this.#buckets[slot]!;
    while (c !== null && !c.matches(key)) c = c.nextInBucket;
    if (c !== null) {
      this.#touch(c);
      return c;
    }
    if (this.#size >= this.maxConnections) {
      // The least recently used idle connection, else the least recently used one.
      const victim = (this.#idle.head ?? this.#busy.head)!;
      onEvict(victim);
      this.#remove(victim);
      this.evicted++;
    }
    c = new Connection(key, this.#serial++, this);
    c.nextInBucket = this.#buckets[slot]!;
    this.#buckets[slot] = c;
    this.#size++;
    this.created++;
    append(this.#idle, c);
    return c;
  }

  /** Moves a connection whose busy state changed to the tail of the other list: it was just used. */
  moveList(c: Connection): void {
    unlink(c.onBusyList ? this.#busy : this.#idle, c);
    c.onBusyList = !c.onBusyList;
    append(c.onBusyList ? this.#busy : this.#idle, c);
  }

  #touch(c: Connection): void {
    const list = c.onBusyList ? this.#busy : this.#idle;
    if (list.tail === c) return;
    unlink(list, c);
    append(list, c);
  }

  #remove(c: Connection): void {
    unlink(c.onBusyList ? this.#busy : this.#idle, c);
    const slot = c.hash & this.#mask;
    let prev: Connection | null = null;
    let cur: Connection | null = this.#buckets[slot]!;
    while (cur !== null && cur !== c) {
      prev = cur;
      cur = cur.nextInBucket;
    }
    if (cur === null) return;
    if (prev === null) this.#buckets[slot] = c.nextInBucket;
    else prev.nextInBucket = c.nextInBucket;
    this.#size--;
  }

  /** Connections holding packets, least recently used first (a snapshot: safe to drain while iterating). */
  busyConnections(): Connection[] {
    const out: Connection[] = [];
    for (let c = this.#busy.head; c !== null; c = c.lruNext) out.push(c);
    return out;
  }

  /** All connections: idle ones least recently used first, then busy ones likewise. */
  *[Symbol.iterator](): IterableIterator<Connection> {
    for (let c = this.#idle.head; c !== null; c = c.lruNext) yield c;
    for (let c = this.#busy.head; c !== null; c = c.lruNext) yield c;
  }
}

function append(list: LruList, c: Connection): void {
  c.lruPrev = list.tail;
  c.lruNext = null;
  if (list.tail !== null) list.tail.lruNext = c;
  else list.head = c;
  list.tail = c;
}

function unlink(list: LruList, c: Connection): void {
  if (c.lruPrev !== null) c.lruPrev.lruNext = c.lruNext;
  else list.head = c.lruNext;
  if (c.lruNext !== null) c.lruNext.lruPrev = c.lruPrev;
  else list.tail = c.lruPrev;
  c.lruPrev = null;
  c.lruNext = null;
}
