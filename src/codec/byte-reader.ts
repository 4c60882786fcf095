// A bounds-checked cursor over a byte window (after protobuf-es's
// BinaryReader): one length check per field instead of a `!` per byte. Running
// past the end throws a coded truncation error naming what was being read and
// the absolute offset, so every codec reports short input the same way.

import { NetrrError, type ErrorCode } from '../errors.ts';
import { i32le, u16be, u16le, u32be, u32le, u64be, u64beNumber, u64le, u64leNumber } from './bytes.ts';

export class ByteReader {
  buf: Uint8Array;
  /** Position in buf of the next byte to read. */
  pos: number;
  /** End of the readable window in buf. */
  end: number;
  /** Absolute offset (in the file or stream) of buf[0], for error messages. */
  base: number;
  readonly #code: ErrorCode;

  constructor(buf: Uint8Array, start = 0, end = buf.length, base = 0, code: ErrorCode = 'ERR_TRUNCATED') {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.base = base;
    this.#code = code;
  }

  /** Points the reader at a new window (reuse instead of a new reader per record). */
  reset(buf: Uint8Array, start: number, end: number, base: number): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.base = base;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Absolute offset of the next byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Throws the truncation error unless n more bytes are readable. */
  need(n: number, what = 'field'): void {
    if (this.end - this.pos < n) {
      throw new NetrrError(this.#code, `${what} needs ${n} bytes at offset ${this.offset}; only ${Math.max(0, this.end - this.pos)} remain`, { offset: this.offset });
    }
  }

  #take(n: number, what: string): number {
    this.need(n, what);
    const p = this.pos;
    this.pos = p + n;
    return p;
  }

  u8(what = 'u8'): number {
    return this.buf[this.#take(1, what)]!;
  }

  u16le(what = 'u16'): number {
    return u16le(this.buf, this.#take(2, what));
  }

  u16be(what = 'u16'): number {
    return u16be(this.buf, this.#take(2, what));
  }

  u32le(what = 'u32'): number {
    return u32le(this.buf, this.#take(4, what));
  }

  u32be(what = 'u32'): number {
    return u32be(this.buf, this.#take(4, what));
  }

  i32le(what = 'i32'): number {
    return i32le(this.buf, this.#take(4, what));
  }

  u64le(what = 'u64'): bigint {
    return u64le(this.buf, this.#take(8, what));
  }

  u64be(what = 'u64'): bigint {
    return u64be(this.buf, this.#take(8, what));
  }

  /** A u64 that must be below 2^53 (counts, offsets); ERR_VALUE_RANGE otherwise. */
  u64leNumber(what = 'u64'): number {
    this.need(8, what);
    const p = this.pos;
    if (u32le(this.buf, p + 4) >= 0x200000) this.#range(p, what);
    this.pos = p + 8;
    return u64leNumber(this.buf, p);
  }

  u64beNumber(what = 'u64'): number {
    this.need(8, what);
    const p = this.pos;
    if (u32be(this.buf, p) >= 0x200000) this.#range(p, what);
    this.pos = p + 8;
    return u64beNumber(this.buf, p);
  }

  /** A failed read, like a short one, leaves the cursor where it was. */
  #range(p: number, what: string): never {
    throw new NetrrError('ERR_VALUE_RANGE', `${what} at offset ${this.base + p} is 2^53 or more`, { offset: this.base + p });
  }

  /** A view of the next n bytes (no copy). */
  bytes(n: number, what = 'bytes'): Uint8Array {
    const p = this.#take(n, what);
    return this.buf.subarray(p, p + n);
  }

  skip(n: number, what = 'bytes'): void {
    this.#take(n, what);
  }
}
