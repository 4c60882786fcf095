// A growable output buffer for capture writers: blocks are encoded straight
// into it and handed out whole, in chunks of about FLUSH_BYTES, to a file.

/** Chunk size handed to the file: big enough that write() calls are rare. */
export const OUTPUT_FLUSH_BYTES = 1024 * 1024;

export class OutputBuffer {
  buf: Uint8Array;
  fill = 0;

  constructor(capacity = OUTPUT_FLUSH_BYTES + 64 * 1024) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Makes room for n more bytes; returns the offset to write at. */
  reserve(n: number): number {
    if (this.fill + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.fill + n));
      next.set(this.buf.subarray(0, this.fill));
      this.buf = next;
    }
    return this.fill;
  }

  get shouldFlush(): boolean {
    return this.fill >= OUTPUT_FLUSH_BYTES;
  }

  /**
   * Hands over the bytes written so far. A small fill (a group commit of a
   * few records) is copied out and the buffer reused; a large one is handed
   * over whole and replaced by an unzeroed buffer. Either way no 1 MiB
   * zero-fill per call (that made the log writer fall behind).
   */
  take(): Uint8Array | null {
    if (this.fill === 0) return null;
    let out: Uint8Array;
    if (this.fill < this.buf.length / 4) {
      out = Buffer.allocUnsafe(this.fill);
      out.set(this.buf.subarray(0, this.fill));
    } else {
      out = this.buf.subarray(0, this.fill);
      this.buf = Buffer.allocUnsafe(this.buf.length);
    }
    this.fill = 0;
    return out;
  }
}
