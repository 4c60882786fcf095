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
import { ByteReader } from './byte-reader.ts';
import { u32le, w32le, w64le, w64leNumber } from './bytes.ts';
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
  /** Nanoseconds since the Unix epoch (≈ 1.8e18, past 2^53: exact only as a bigint). */
  readonly createdNs: bigint;
}

export function encodeLogHeader(h: LogHeader): Uint8Array {
  const b = new Uint8Array(LOG_HEADER_BYTES);
  b.set(LOG_MAGIC, 0);
  b[8] = h.version & 0xff;
  b[9] = h.version >> 8;
  b[10] = 0x02; // 0x0102 little-endian
  b[11] = 0x01;
  w32le(b, 12, LOG_HEADER_BYTES);
  w32le(b, 16, h.segment);
  w32le(b, 20, h.flags);
  w64leNumber(b, 24, h.firstSeq);
  w64le(b, 32, h.createdNs);
  w32le(b, 60, crc32(b, 0, 60));
  return b;
}

export function decodeLogHeader(b: Uint8Array): LogHeader {
  if (b.length < LOG_HEADER_BYTES) throw new NetrrError('ERR_LOG_TRUNCATED', `log header needs ${LOG_HEADER_BYTES} bytes, file has ${b.length}`, { offset: 0 });
  for (let i = 0; i < 8; i++) {
    if (b[i] !== LOG_MAGIC[i]) throw new NetrrError('ERR_LOG_BAD_MAGIC', 'not a netrr log (bad magic)', { offset: 0 });
  }
  if (crc32(b, 0, 60) !== u32le(b, 60)) throw new NetrrError('ERR_LOG_BAD_HEADER', 'log header CRC mismatch', { offset: 0 });
  const r = new ByteReader(b, 8, LOG_HEADER_BYTES, 0, 'ERR_LOG_TRUNCATED');
  const version = r.u16le();
  if (version !== LOG_VERSION) throw new NetrrError('ERR_LOG_BAD_VERSION', `unsupported log version ${version} (this netrr reads ${LOG_VERSION})`, { offset: 8 });
  if (r.u16le() !== 0x0102) throw new NetrrError('ERR_LOG_BAD_HEADER', 'log byte-order mark is not little-endian', { offset: 10 });
  const headerBytes = r.u32le();
  if (headerBytes !== LOG_HEADER_BYTES) throw new NetrrError('ERR_LOG_BAD_HEADER', `unexpected header length ${headerBytes}`, { offset: 12 });
  const segment = r.u32le();
  const flags = r.u32le();
  const firstSeq = r.u64leNumber('first sequence number');
  return { version, segment, flags, firstSeq, createdNs: r.u64le() };
}

/** Total bytes a record with this payload occupies. */
export function recordBytes(payloadLength: number): number {
  return RECORD_HEADER_BYTES + payloadLength;
}

/** The fields of a record to encode (one object, reused by writers). */
export interface RecordFields {
  type: number;
  port: number;
  direction: number;
  flags: number;
  /** Below 2^53. */
  seq: number;
  /** Nanoseconds since the segment's `created`; below 2^53 (104 days). */
  tsNs: number;
  payload: Uint8Array;
}

/** Encodes one record at target[o]; returns the offset after it. The caller reserves recordBytes(r.payload.length). */
export function encodeRecordAt(target: Uint8Array, o: number, r: RecordFields): number {
  const len = RECORD_FIXED_AFTER_LEN + r.payload.length;
  w32le(target, o, len);
  target[o + 8] = r.type;
  target[o + 9] = r.port;
  target[o + 10] = r.direction;
  target[o + 11] = r.flags;
  w64leNumber(target, o + 12, r.seq);
  w64leNumber(target, o + 20, r.tsNs);
  target.set(r.payload, o + RECORD_HEADER_BYTES);
  const end = o + 4 + len;
  w32le(target, o + 4, crc32(target, o + 8, end, crc32(target, o, o + 4)));
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
  w64leNumber(b, 0, f.records);
  w64leNumber(b, 8, f.firstSeq);
  w64leNumber(b, 16, f.lastSeq);
  w64leNumber(b, 24, f.firstTsNs);
  w64leNumber(b, 32, f.lastTsNs);
  w64leNumber(b, 40, f.indexOffset);
  // Last 4 bytes of the file: the footer record's total size, to find it from the end.
  w32le(b, 48, recordBytes(FOOTER_PAYLOAD_BYTES));
  return b;
}

export function decodeFooterPayload(p: Uint8Array): LogFooter {
  if (p.length !== FOOTER_PAYLOAD_BYTES) throw new NetrrError('ERR_LOG_BAD_RECORD', `footer payload of ${p.length} bytes (expected ${FOOTER_PAYLOAD_BYTES})`);
  const r = new ByteReader(p, 0, p.length, 0, 'ERR_LOG_BAD_RECORD');
  return { records: r.u64leNumber(), firstSeq: r.u64leNumber(), lastSeq: r.u64leNumber(), firstTsNs: r.u64leNumber(), lastTsNs: r.u64leNumber(), indexOffset: r.u64leNumber() };
}

/** Bytes of a footer record (for readers seeking from the end). */
export const FOOTER_RECORD_BYTES = recordBytes(FOOTER_PAYLOAD_BYTES);

export function encodeIndexPayload(entries: readonly (readonly [number, number])[]): Uint8Array {
  const b = new Uint8Array(entries.length * 16);
  entries.forEach(([seq, off], i) => {
    w64leNumber(b, i * 16, seq);
    w64leNumber(b, i * 16 + 8, off);
  });
  return b;
}

export function decodeIndexPayload(p: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  const r = new ByteReader(p, 0, p.length - (p.length % 16), 0, 'ERR_LOG_BAD_RECORD');
  while (r.remaining > 0) out.push([r.u64leNumber('index sequence number'), r.u64leNumber('index offset')]);
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
  readonly #reader = new ByteReader(new Uint8Array(0), 0, 0, 0, 'ERR_LOG_BAD_RECORD');
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
      const len = u32le(b, pos);
      if (len < RECORD_FIXED_AFTER_LEN || len - RECORD_FIXED_AFTER_LEN > LOG_MAX_PAYLOAD_BYTES) {
        throw new NetrrError('ERR_LOG_BAD_RECORD', `record at offset ${this.#offset} has impossible length ${len}`, { offset: this.#offset });
      }
      const total = 4 + len;
      if (end - pos < total) {
        this.needBytes = total;
        return pos;
      }
      if (crc32(b, pos + 8, pos + total, crc32(b, pos, pos + 4)) !== u32le(b, pos + 4)) {
        throw new NetrrError('ERR_LOG_BAD_RECORD', `record at offset ${this.#offset} fails its CRC`, { offset: this.#offset });
      }
      // The CRC passed, so the fixed fields are there; the reader still checks.
      const f = this.#reader.reset(b, pos + 8, pos + total, this.#offset - pos);
      r.type = f.u8();
      r.port = f.u8();
      r.direction = f.u8();
      r.flags = f.u8();
      r.seq = f.u64leNumber('sequence number');
      r.tsNs = f.u64leNumber('timestamp');
      r.payload = f.bytes(f.remaining);
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
