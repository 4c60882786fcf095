// The rewriter's connection table: connections by canonical flow key, and
// how it stays bounded. QEMU's way (mode=qemu): past its bound the whole
// table is cleared (connection_get, reference colo-proxy.md §7). netrr's
// (mode=extended): the least recently used connection is evicted, through an
// intrusive list, O(1) per frame.

import { FlowKey } from '../../packet/flow-key.ts';

/** TCP states the rewriter tracks (QEMU's TCPS_* subset). */
export const TcpState = {
  Closed: 0,
  SynSent: 1,
  SynReceived: 2,
  Established: 3,
  CloseWait: 4,
  LastAck: 5,
  FinWait1: 6,
  /** netrr: the client acknowledged a bare FIN from the guest; the guest's final ACK is still to come. */
  TimeWait: 7,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export class RewriterConnection {
  readonly key: FlowKey;
  state: TcpState = TcpState.Closed;
  /** secondary ISN − primary ISN, mod 2^32 (while SYN_RECEIVED: the secondary ISN). */
  offset = 0;
  /** The guest's FIN/ACK sequence number, in the primary's space. */
  finAckSeq = 0;
  // extended mode only:
  /** The secondary guest's ISN and SYN TSval, until the offsets are learned. */
  guestIsn = 0;
  guestTsVal = -1;
  /** secondary TSval − primary TSval, mod 2^32 (ts-offset=on). */
  tsOffset = 0;
  /** Each side's FIN, as the sequence number after it (the guest's in the primary's space), and whether it was acknowledged. */
  guestFinEnd = -1;
  netFinEnd = -1;
  guestFinAcked = false;
  netFinAcked = false;
  /** LRU order (most recently used at the head). */
  prev: RewriterConnection | null = null;
  next: RewriterConnection | null = null;

  constructor(key: FlowKey) {
    this.key = new FlowKey().copyFrom(key);
  }
}

export class RewriterTable {
  readonly max: number;
  /** LRU eviction (extended) instead of clearing the whole table (qemu). */
  readonly lru: boolean;
  readonly #byHash = new Map<number, RewriterConnection[]>();
  #size = 0;
  #head: RewriterConnection | null = null;
  #tail: RewriterConnection | null = null;

  constructor(max: number, lru: boolean) {
    this.max = max;
    this.lru = lru;
  }

  get size(): number {
    return this.#size;
  }

  find(key: FlowKey): RewriterConnection | null {
    const list = this.#byHash.get(key.hash);
    if (list === undefined) return null;
    for (let i = 0; i < list.length; i++) if (list[i]!.key.equals(key)) return list[i]!;
    return null;
  }

  /** Adds a connection; at the bound first evicts (lru: returns 'evicted') or clears everything (returns 'reset'). */
  create(key: FlowKey): { conn: RewriterConnection; made: 'room' | 'evicted' | 'reset' } {
    let made: 'room' | 'evicted' | 'reset' = 'room';
    if (this.#size >= this.max) {
      if (this.lru && this.#tail !== null) {
        this.delete(this.#tail);
        made = 'evicted';
      } else {
        this.#byHash.clear();
        this.#size = 0;
        this.#head = this.#tail = null;
        made = 'reset';
      }
    }
    const conn = new RewriterConnection(key);
    const list = this.#byHash.get(key.hash);
    if (list === undefined) this.#byHash.set(key.hash, [conn]);
    else list.push(conn);
    this.#size++;
    if (this.lru) this.#pushHead(conn);
    return { conn, made };
  }

  /** Marks a connection used (lru). */
  touch(conn: RewriterConnection): void {
    if (!this.lru || this.#head === conn) return;
    this.#unlink(conn);
    this.#pushHead(conn);
  }

  /** Removes a connection; false if it was not in the table. */
  delete(conn: RewriterConnection): boolean {
    const list = this.#byHash.get(conn.key.hash);
    if (list === undefined) return false;
    const i = list.indexOf(conn);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#byHash.delete(conn.key.hash);
    this.#size--;
    if (this.lru) this.#unlink(conn);
    conn.state = TcpState.Closed;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<RewriterConnection> {
    for (const list of this.#byHash.values()) yield* list;
  }

  #pushHead(conn: RewriterConnection): void {
    conn.prev = null;
    conn.next = this.#head;
    if (this.#head !== null) this.#head.prev = conn;
    this.#head = conn;
    if (this.#tail === null) this.#tail = conn;
  }

  #unlink(conn: RewriterConnection): void {
    if (conn.prev !== null) conn.prev.next = conn.next;
    else if (this.#head === conn) this.#head = conn.next;
    if (conn.next !== null) conn.next.prev = conn.prev;
    else if (this.#tail === conn) this.#tail = conn.prev;
    conn.prev = null;
    conn.next = null;
  }
}
