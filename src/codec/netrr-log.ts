// netrr's record log: crash-safe, append-only, self-checking.
//
// Unlike QEMU's replay log (header written only at clean exit, so a killed
// recording is lost) and KRR's (raw C structs written at the end), every
// record stands alone: length, CRC-32, type, port, direction, sequence number
// and monotonic timestamp, then the frame. A torn tail is detected by length
// or CRC and can be cut off; nothing after the first bad byte is trusted.
//
// File (segment) header, 64 bytes, little-endian:
//   0  magic "NRRLOG\r\n"        8  u16 version (1)     10 u16 byte-order mark 0x0102
//   12 u32 header length (64)     16 u32 segment index   20 u32 flags
//   24 u64 first sequence number  32 u64 created, ns since the Unix epoch
//   40..59 reserved (0)           60 u32 CRC-32 of bytes 0..59
// Record:
//   0  u32 len: bytes after this field (24 + payload)
//   4  u32 CRC-32 of bytes 0..3 and 8..4+len
//   8  u8 type (0 frame, 1 index, 2 footer)   9 u8 port   10 u8 direction   11 u8 flags
//   12 u64 sequence number        20 u64 timestamp, ns since the segment's `created`
//   28 payload
// A clean close appends an index record (every INDEX_EVERY-th frame's seq and
// offset) and a footer record whose payload ends with its own total size, so a
// reader can find it from the end of the file.

import { NetrrError } from '../errors.ts';
import { crc32 } from './crc32.ts';

export const LOG_MAGIC = Uint8Array.from([0x4e, 0x52, 0x52, 0x4c, 0x4f, 0x47, 0x0d, 0x0a]); // NRRLOG\r\n
export const LOG_VERSION = 1;
export const LOG_HEADER_BYTES = 64;
export const RECORD_HEADER_BYTES = 28;
/** Bytes of a record after its length field, excluding payload. */
const RECORD_FIXED_AFTER_LEN = RECORD_HEADER_BYTES - 4;
/** Largest record payload accepted (frames are ≤ 69632; index records can be larger). */
export const LOG_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

export const REC_FRAME = 0;
export const REC_INDEX = 1;
export const REC_FOOTER = 2;

/** Direction of a frame relative to its port: received from that port. */
export const DIR_FROM_PORT = 0;
/** Sent to that port (injected, e.g. by replay). */
export const DIR_TO_PORT = 1;

/** One index entry every this many frames. */
export const INDEX_EVERY = 1024;

export interface LogHeader {
  readonly version: number;
  readonly segment: number;
  readonly flags: number;
  readonly firstSeq: number;
  readonly createdNs: number;
}

function w32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

function r32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** u64 as two u32 halves; exact for values below 2^53. */
export function w64(b: Uint8Array, o: number, v: number): void {
  const hi = Math.floor(v / 4294967296);
  w32(b, o, v - hi * 4294967296);
  w32(b, o + 4, hi);
}

export function r64(b: Uint8Array, o: number): number {
  return r32(b, o + 4) * 4294967296 + r32(b, o);
}

export function encodeLogHeader(h: LogHeader): Uint8Array {
  const b = new Uint8Array(LOG_HEADER_BYTES);
  b.set(LOG_MAGIC, 0);
  b[8] = h.version & 0xff;
  b[9] = h.version >> 8;
  b[10] = 0x02; // 0x0102 little-endian
  b[11] = 0x01;
  w32(b, 12, LOG_HEADER_BYTES);
  w32(b, 16, h.segment);
  w32(b, 20, h.flags);
  w64(b, 24, h.firstSeq);
  w64(b, 32, h.createdNs);
  w32(b, 60, crc32(b, 0, 60));
  return b;
}

export function decodeLogHeader(b: Uint8Array): LogHeader {
  if (b.length < LOG_HEADER_BYTES) throw new NetrrError('ERR_LOG_TRUNCATED', `log header needs ${LOG_HEADER_BYTES} bytes, file has ${b.length}`, { offset: 0 });
  for (let i = 0; i < 8; i++) {
    if (b[i] !== LOG_MAGIC[i]) throw new NetrrError('ERR_LOG_BAD_MAGIC', 'not a netrr log (bad magic)', { offset: 0 });
  }
  if (crc32(b, 0, 60) !== r32(b, 60)) throw new NetrrError('ERR_LOG_BAD_HEADER', 'log header CRC mismatch', { offset: 0 });
  const version = b[8]! | (b[9]! << 8);
  if (version !== LOG_VERSION) throw new NetrrError('ERR_LOG_BAD_VERSION', `unsupported log version ${version} (this netrr reads ${LOG_VERSION})`, { offset: 8 });
  if (b[10] !== 0x02 || b[11] !== 0x01) throw new NetrrError('ERR_LOG_BAD_HEADER', 'log byte-order mark is not little-endian', { offset: 10 });
  if (r32(b, 12) !== LOG_HEADER_BYTES) throw new NetrrError('ERR_LOG_BAD_HEADER', `unexpected header length ${r32(b, 12)}`, { offset: 12 });
  return { version, segment: r32(b, 16), flags: r32(b, 20), firstSeq: r64(b, 24), createdNs: r64(b, 32) };
}

/** Total bytes a record with this payload occupies. */
export function recordBytes(payloadLength: number): number {
  return RECORD_HEADER_BYTES + payloadLength;
}

/** Encodes one record at target[o]; returns the offset after it. The caller reserves recordBytes(payload.length). */
export function encodeRecordAt(
  target: Uint8Array,
  o: number,
  type: number,
  port: number,
  direction: number,
  flags: number,
  seq: number,
  tsNs: number,
  payload: Uint8Array,
): number {
  const len = RECORD_FIXED_AFTER_LEN + payload.length;
  w32(target, o, len);
  target[o + 8] = type;
  target[o + 9] = port;
  target[o + 10] = direction;
  target[o + 11] = flags;
  w64(target, o + 12, seq);
  w64(target, o + 20, tsNs);
  target.set(payload, o + RECORD_HEADER_BYTES);
  const end = o + 4 + len;
  w32(target, o + 4, crc32(target, o + 8, end, crc32(target, o, o + 4)));
  return end;
}

/** A decoded record; the parser reuses one object (copy payload to keep it). */
export class LogRecord {
  type = 0;
  port = 0;
  direction = 0;
  flags = 0;
  seq = 0;
  tsNs = 0;
  payload: Uint8Array = new Uint8Array(0);
  /** File offset of the record. */
  offset = 0;
}

export interface LogFooter {
  readonly records: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstTsNs: number;
  readonly lastTsNs: number;
  readonly indexOffset: number;
}

const FOOTER_PAYLOAD_BYTES = 6 * 8 + 4;

export function encodeFooterPayload(f: LogFooter): Uint8Array {
  const b = new Uint8Array(FOOTER_PAYLOAD_BYTES);
  w64(b, 0, f.records);
  w64(b, 8, f.firstSeq);
  w64(b, 16, f.lastSeq);
  w64(b, 24, f.firstTsNs);
  w64(b, 32, f.lastTsNs);
  w64(b, 40, f.indexOffset);
  // Last 4 bytes of the file: the footer record's total size, to find it from the end.
  w32(b, 48, recordBytes(FOOTER_PAYLOAD_BYTES));
  return b;
}

export function decodeFooterPayload(p: Uint8Array): LogFooter {
  if (p.length !== FOOTER_PAYLOAD_BYTES) throw new NetrrError('ERR_LOG_BAD_RECORD', `footer payload of ${p.length} bytes (expected ${FOOTER_PAYLOAD_BYTES})`);
  return { records: r64(p, 0), firstSeq: r64(p, 8), lastSeq: r64(p, 16), firstTsNs: r64(p, 24), lastTsNs: r64(p, 32), indexOffset: r64(p, 40) };
}

/** Bytes of a footer record (for readers seeking from the end). */
export const FOOTER_RECORD_BYTES = recordBytes(FOOTER_PAYLOAD_BYTES);

export function encodeIndexPayload(entries: readonly (readonly [number, number])[]): Uint8Array {
  const b = new Uint8Array(entries.length * 16);
  entries.forEach(([seq, off], i) => {
    w64(b, i * 16, seq);
    w64(b, i * 16 + 8, off);
  });
  return b;
}

export function decodeIndexPayload(p: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let o = 0; o + 16 <= p.length; o += 16) out.push([r64(p, o), r64(p, o + 8)]);
  return out;
}

/**
 * Windowed record parser (like the pcap parsers): parse() consumes whole,
 * verified records from b[start, end) and returns where it stopped. A record
 * whose length is absurd or whose CRC fails throws ERR_LOG_BAD_RECORD with the
 * offset; `goodEnd` is then the end of the last good record.
 */
export class LogParser {
  readonly record = new LogRecord();
  needBytes = RECORD_HEADER_BYTES;
  records = 0;
  /** File offset just after the last good record. */
  goodEnd: number;
  lastSeq = -1;
  #offset: number;

  constructor(startOffset = LOG_HEADER_BYTES) {
    this.#offset = startOffset;
    this.goodEnd = startOffset;
  }

  parse(b: Uint8Array, start: number, end: number, onRecord: (r: LogRecord) => void): number {
    const r = this.record;
    let pos = start;
    while (end - pos >= 4) {
      const len = r32(b, pos);
      if (len < RECORD_FIXED_AFTER_LEN || len - RECORD_FIXED_AFTER_LEN > LOG_MAX_PAYLOAD_BYTES) {
        throw new NetrrError('ERR_LOG_BAD_RECORD', `record at offset ${this.#offset} has impossible length ${len}`, { offset: this.#offset });
      }
      const total = 4 + len;
      if (end - pos < total) {
        this.needBytes = total;
        return pos;
      }
      if (crc32(b, pos + 8, pos + total, crc32(b, pos, pos + 4)) !== r32(b, pos + 4)) {
        throw new NetrrError('ERR_LOG_BAD_RECORD', `record at offset ${this.#offset} fails its CRC`, { offset: this.#offset });
      }
      r.type = b[pos + 8]!;
      r.port = b[pos + 9]!;
      r.direction = b[pos + 10]!;
      r.flags = b[pos + 11]!;
      r.seq = r64(b, pos + 12);
      r.tsNs = r64(b, pos + 20);
      r.payload = b.subarray(pos + RECORD_HEADER_BYTES, pos + total);
      r.offset = this.#offset;
      pos += total;
      this.#offset += total;
      this.goodEnd = this.#offset;
      this.records++;
      if (r.type === REC_FRAME) this.lastSeq = r.seq;
      onRecord(r);
    }
    this.needBytes = RECORD_HEADER_BYTES;
    return pos;
  }
}
