// Byte primitives for every codec: big- and little-endian reads and writes on
// a Uint8Array, without a DataView (a DataView per frame costs an allocation
// on hot paths). Reads do not bound-check; a caller that has not already
// checked the length uses ByteReader (byte-reader.ts), which does.
//
// 64-bit fields come two ways: as a bigint, exact over the whole range (for
// values that really use it, such as nanoseconds since 1970, ≈ 1.8e18 > 2^53),
// and as a number for counters and offsets that stay below 2^53, which
// u64leNumber checks rather than silently rounding.

import { NetrrError } from '../errors.ts';

const TWO_32 = 4294967296;

export function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function u32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

export function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** Signed 32-bit little-endian (C `int`). */
export function i32le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}

/** Either byte order, chosen at run time (pcap and pcapng sections declare theirs). */
export function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? u16le(b, o) : u16be(b, o);
}

export function u32(b: Uint8Array, o: number, le: boolean): number {
  return le ? u32le(b, o) : u32be(b, o);
}

export function w16be(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function w32be(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

export function w16le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

export function w32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** Unsigned 64-bit little-endian, exact. */
export function u64le(b: Uint8Array, o: number): bigint {
  return (BigInt(u32le(b, o + 4)) << 32n) | BigInt(u32le(b, o));
}

export function w64le(b: Uint8Array, o: number, v: bigint): void {
  w32le(b, o, Number(v & 0xffffffffn));
  w32le(b, o + 4, Number((v >> 32n) & 0xffffffffn));
}

/** Unsigned 64-bit big-endian, exact. */
export function u64be(b: Uint8Array, o: number): bigint {
  return (BigInt(u32be(b, o)) << 32n) | BigInt(u32be(b, o + 4));
}

/**
 * Unsigned 64-bit little-endian as a number; ERR_VALUE_RANGE when the value is
 * 2^53 or more, where a number would round.
 */
export function u64leNumber(b: Uint8Array, o: number): number {
  const hi = u32le(b, o + 4);
  if (hi >= 0x200000) throw new NetrrError('ERR_VALUE_RANGE', `64-bit field at offset ${o} holds ${u64le(b, o)}, beyond 2^53`, { offset: o });
  return hi * TWO_32 + u32le(b, o);
}

/** As u64leNumber, big-endian. */
export function u64beNumber(b: Uint8Array, o: number): number {
  const hi = u32be(b, o);
  if (hi >= 0x200000) throw new NetrrError('ERR_VALUE_RANGE', `64-bit field at offset ${o} holds ${u64be(b, o)}, beyond 2^53`, { offset: o });
  return hi * TWO_32 + u32be(b, o + 4);
}

/** Writes a non-negative integer below 2^53 as u64 little-endian. */
export function w64leNumber(b: Uint8Array, o: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new NetrrError('ERR_VALUE_RANGE', `${v} is not a non-negative integer below 2^53`);
  const hi = Math.floor(v / TWO_32);
  w32le(b, o, v - hi * TWO_32);
  w32le(b, o + 4, hi);
}

const nativeCompare = Buffer.prototype.compare;

/**
 * Ranges shorter than this are compared by a JS loop: Buffer#compare costs
 * about 60 ns whatever the length, the loop 1.6 ns per byte (bench/bytes-equal.ts:
 * 53 against 59 ns at 32 bytes, 79 against 60 at 48).
 */
export const NATIVE_EQUAL_MIN_BYTES = 40;

/** a[ao, ao+len) equals b[bo, bo+len); false when either range runs past its array. */
export function rangesEqual(a: Uint8Array, ao: number, b: Uint8Array, bo: number, len: number): boolean {
  if (len < 0 || ao + len > a.length || bo + len > b.length) return false;
  if (len >= NATIVE_EQUAL_MIN_BYTES) return nativeCompare.call(a, b, bo, bo + len, ao, ao + len) === 0;
  for (let i = 0; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** Offset (from the starts) of the first byte where a[ao, aEnd) and b[bo, bEnd) differ; the shorter length when one is a prefix of the other. */
export function firstDifference(a: Uint8Array, ao: number, aEnd: number, b: Uint8Array, bo: number, bEnd: number): number {
  const n = Math.min(aEnd - ao, bEnd - bo);
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return i;
  return Math.max(0, n);
}
