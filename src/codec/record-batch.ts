// Accumulates encoded records so that a socket gets several records per
// write() syscall. Each record is copied once, into the batch: the batch is
// the ownership boundary between the caller's frame and the kernel.

import { encodeRecordInto, recordWireBytes } from './qemu-framing.ts';

/** Default batch size: large enough to amortise a syscall over ~40 full-size frames. */
export const RECORD_BATCH_BYTES = 64 * 1024;

/**
 * Written batches kept for reuse. Copying a frame into a fresh 64 KiB buffer
 * costs about 4x copying it into one already touched (page faults and cold
 * cache; bench/framing.ts, encode rows), which made the
 * release of a 10 000-frame epoch of full-size frames copy-bound. 32 buffers
 * (2 MiB) cover the default 1 MiB high-water mark of a stream endpoint.
 */
export const RECORD_BATCH_FREE_MAX = 32;

export class RecordBatch {
  readonly vnetHdr: boolean;
  readonly capacity: number;
  #buf: Uint8Array;
  #fill = 0;
  /** Buffers whose bytes the kernel has taken (see recycle). */
  #free: Uint8Array[] = [];
  /** Records currently in the batch. */
  count = 0;

  constructor(vnetHdr: boolean, capacity = RECORD_BATCH_BYTES) {
    this.vnetHdr = vnetHdr;
    this.capacity = capacity;
    this.#buf = Buffer.allocUnsafe(capacity);
  }

  get byteLength(): number {
    return this.#fill;
  }

  /** True when `frameLength` more bytes fit without taking the batch first. */
  fits(frameLength: number): boolean {
    return this.#fill + recordWireBytes(frameLength, this.vnetHdr) <= this.#buf.length;
  }

  /**
   * Appends one record. The caller checks fits() first and takes the batch if
   * not; a record larger than the whole capacity gets a batch of its own size.
   */
  append(frame: Uint8Array, vnetHdrLen: number): void {
    const need = recordWireBytes(frame.length, this.vnetHdr);
    if (this.#fill + need > this.#buf.length) {
      if (this.#fill !== 0) throw new RangeError('RecordBatch.append without room: take() first');
      this.#buf = Buffer.allocUnsafe(need);
    }
    this.#fill = encodeRecordInto(this.#buf, this.#fill, frame, this.vnetHdr, vnetHdrLen);
    this.count++;
  }

  /** Hands over the filled bytes (whole records only) and starts a new batch. */
  take(): Uint8Array | null {
    if (this.#fill === 0) return null;
    const out = this.#buf.subarray(0, this.#fill);
    // Unzeroed: every byte handed out was written by append().
    this.#buf = this.#free.pop() ?? Buffer.allocUnsafe(this.capacity);
    this.#fill = 0;
    this.count = 0;
    return out;
  }

  /**
   * Gives back a chunk that take() handed out, once nothing reads it any more
   * (the socket's write callback): its buffer is reused for a later batch.
   * Chunks of an oversized record's own buffer are not kept.
   */
  recycle(chunk: Uint8Array): void {
    if (chunk.byteOffset !== 0 || chunk.buffer.byteLength !== this.capacity || this.#free.length >= RECORD_BATCH_FREE_MAX) return;
    this.#free.push(new Uint8Array(chunk.buffer, 0, this.capacity));
  }
}
