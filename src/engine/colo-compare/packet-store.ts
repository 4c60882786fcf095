// Storage for the packets the compare engine keeps waiting, and the pool of
// their objects: no allocation per packet in the steady state.
//
// A packet is compared on arrival against the caller's own frame (borrowed);
// only one that must wait is copied, into a slab: a large buffer filled front
// to back, reused once every packet in it has left. One slow packet can keep
// a slab from being reused, so scan() copies the packets of sparse slabs out
// (copyOutSparse), counted, which bounds slab memory to a multiple of the
// bytes actually queued.

import { ComparePacket } from './compare-packet.ts';

/** Bytes per slab. */
export const STORE_SLAB_BYTES = 256 * 1024;
/** Frames larger than this get a buffer of their own (a slab holds at least 8). */
export const STORE_MAX_SLAB_FRAME_BYTES = STORE_SLAB_BYTES / 8;
/** Empty slabs kept for reuse; more are left to the garbage collector. */
export const STORE_SPARE_SLABS = 8;
/** A slab below this share of live bytes has its packets copied out at the scan. */
export const STORE_SPARSE_FRACTION = 1 / 8;
/** Packet objects kept for reuse. */
export const STORE_SPARE_PACKETS = 16384;

export class Slab {
  /** Plain bytes, not a Buffer: a release takes a subarray of it, cheaper on a Uint8Array (bench/views.ts). */
  readonly buf = new Uint8Array(STORE_SLAB_BYTES);
  used = 0;
  /** Packets whose bytes are here. */
  live = 0;
  liveBytes = 0;
}

export class PacketStore {
  /** Slabs allocated since start (reused ones are not counted again). */
  slabsAllocated = 0;
  /** Slabs holding live packets, the current one included. */
  slabsInUse = 0;
  #current: Slab | null = null;
  #spare: Slab[] = [];
  #packets: ComparePacket[] = [];

  /** A packet object from the pool, its fields to be set by the caller. */
  acquire(): ComparePacket {
    const p = this.#packets.pop() ?? new ComparePacket();
    p.offset = 0;
    p.parts = null;
    p.frames = 1;
    p.slab = null;
    return p;
  }

  /** Copies a borrowed packet's bytes into storage: it is going to wait. */
  keep(p: ComparePacket): void {
    const len = p.len;
    if (len > STORE_MAX_SLAB_FRAME_BYTES) {
      ownBuffer(p);
      p.borrowed = false;
      return;
    }
    let slab = this.#current;
    if (slab === null || slab.used + len > STORE_SLAB_BYTES) slab = this.#newCurrent();
    const at = slab.used;
    const src = p.buf;
    // A borrowed packet is the caller's whole frame: no view needed to copy it.
    slab.buf.set(p.off === 0 && src.length === len ? src : src.subarray(p.off, p.off + len), at);
    slab.used += len;
    slab.live++;
    slab.liveBytes += len;
    p.buf = slab.buf;
    p.off = at;
    p.slab = slab;
    p.borrowed = false;
  }

  /** The packet has left the engine: its bytes and object can be reused. */
  free(p: ComparePacket): void {
    const slab = p.slab;
    if (slab !== null) this.#unref(slab, p.len);
    p.slab = null;
    p.parts = null;
    p.buf = EMPTY;
    if (this.#packets.length < STORE_SPARE_PACKETS) this.#packets.push(p);
  }

  /** Moves a waiting packet out of a sparse slab into a buffer of its own; true if it did. */
  copyOutIfSparse(p: ComparePacket): boolean {
    const slab = p.slab;
    if (slab === null || slab === this.#current || slab.liveBytes >= STORE_SLAB_BYTES * STORE_SPARSE_FRACTION) return false;
    ownBuffer(p);
    this.#unref(slab, p.len);
    p.slab = null;
    return true;
  }

  /** Bytes of storage held: slabs in use, whole. */
  get slabBytes(): number {
    return this.slabsInUse * STORE_SLAB_BYTES;
  }

  #unref(slab: Slab, len: number): void {
    slab.live--;
    slab.liveBytes -= len;
    if (slab.live > 0) return;
    if (slab === this.#current) {
      // Empty and current: start it over instead of moving on.
      slab.used = 0;
      return;
    }
    this.slabsInUse--;
    slab.used = 0;
    if (this.#spare.length < STORE_SPARE_SLABS) this.#spare.push(slab);
  }

  #newCurrent(): Slab {
    const old = this.#current;
    if (old !== null && old.live === 0) {
      old.used = 0;
      return old;
    }
    let slab = this.#spare.pop();
    if (slab === undefined) {
      slab = new Slab();
      this.slabsAllocated++;
    }
    this.slabsInUse++;
    this.#current = slab;
    return slab;
  }
}

const EMPTY = new Uint8Array(0);

/** Moves a packet's bytes into a buffer of their own. */
function ownBuffer(p: ComparePacket): void {
  const own = Buffer.allocUnsafeSlow(p.len);
  own.set(p.buf.subarray(p.off, p.off + p.len));
  p.buf = own;
  p.off = 0;
}
