// Classic libpcap format (draft-ietf-opsawg-pcap): a 24-byte file header
// whose magic tells byte order and µs/ns resolution, then 16-byte record
// headers. The parser works on a window of bytes and reports how much it
// consumed, so a file reader can stream files larger than memory.

import { NetrrError } from '../errors.ts';
import { u16, u32, w32le } from '../codec/bytes.ts';
import { type CaptureInterface, CaptureRecord } from './capture-record.ts';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAP_FILE_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;
/** Largest record we accept; larger is corruption, not a packet (Wireshark's limit is 256 KiB). */
export const PCAP_MAX_RECORD_BYTES = 16 * 1024 * 1024;

export interface PcapHeader {
  readonly littleEndian: boolean;
  readonly nanosecond: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snapLen: number;
  readonly linkType: number;
  /** FCS length announced in the link-type field's upper bits (0 if none). */
  readonly fcsBytes: number;
}


export function isPcapMagic(b: Uint8Array): boolean {
  if (b.length < 4) return false;
  const be = u32(b, 0, false);
  const le = u32(b, 0, true);
  return be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS || le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS;
}

export function parsePcapHeader(b: Uint8Array): PcapHeader {
  if (b.length < PCAP_FILE_HEADER_BYTES) {
    throw new NetrrError('ERR_PCAP_TRUNCATED', `pcap file header needs 24 bytes, file has ${b.length}`, { offset: 0 });
  }
  const be = u32(b, 0, false);
  let le: boolean;
  if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) le = false;
  else if (u32(b, 0, true) === PCAP_MAGIC_US || u32(b, 0, true) === PCAP_MAGIC_NS) le = true;
  else throw new NetrrError('ERR_PCAP_BAD_MAGIC', `not a pcap file (magic 0x${be.toString(16).padStart(8, '0')})`, { offset: 0 });
  const magic = u32(b, 0, le);
  const lt = u32(b, 20, le);
  return {
    littleEndian: le,
    nanosecond: magic === PCAP_MAGIC_NS,
    versionMajor: u16(b, 4, le),
    versionMinor: u16(b, 6, le),
    snapLen: u32(b, 16, le),
    // Bits 0-15 are the link type; bit 28 flags an FCS whose length is bits 29-31.
    linkType: lt & 0xffff,
    fcsBytes: lt & 0x10000000 ? ((lt >>> 29) & 7) * 2 : 0,
  };
}

export function pcapInterface(h: PcapHeader): CaptureInterface {
  return {
    id: 0,
    linkType: h.linkType,
    snapLen: h.snapLen,
    tsUnitsPerSec: h.nanosecond ? 1e9 : 1e6,
    tsOffsetSec: 0,
    name: undefined,
    description: undefined,
    section: 0,
  };
}

/**
 * Record parser. parse() consumes whole records from b[start, end) and
 * returns the offset of the first byte it did not consume; `needBytes` then
 * says how many bytes the next record needs in one window.
 */
export class PcapRecordParser {
  readonly header: PcapHeader;
  readonly record = new CaptureRecord();
  /** Bytes the next record needs, contiguous, when parse() stopped short. */
  needBytes = PCAP_RECORD_HEADER_BYTES;
  count = 0;
  #fileOffset: number;

  constructor(header: PcapHeader, fileOffset = PCAP_FILE_HEADER_BYTES) {
    this.header = header;
    this.#fileOffset = fileOffset;
    this.record.linkType = header.linkType;
    this.record.littleEndian = header.littleEndian;
    this.record.iface = pcapInterface(header);
  }

  /** Byte offset in the file of the next unparsed record. */
  get fileOffset(): number {
    return this.#fileOffset;
  }

  parse(b: Uint8Array, start: number, end: number, onRecord: (r: CaptureRecord) => void): number {
    const le = this.header.littleEndian;
    const ns = this.header.nanosecond;
    const r = this.record;
    let pos = start;
    while (end - pos >= PCAP_RECORD_HEADER_BYTES) {
      const incl = u32(b, pos + 8, le);
      if (incl > PCAP_MAX_RECORD_BYTES) {
        throw new NetrrError(
          'ERR_PCAP_BAD_RECORD',
          `record ${this.count} at offset ${this.#fileOffset} claims ${incl} captured bytes (limit ${PCAP_MAX_RECORD_BYTES})`,
          { offset: this.#fileOffset },
        );
      }
      const total = PCAP_RECORD_HEADER_BYTES + incl;
      if (end - pos < total) {
        this.needBytes = total;
        return pos;
      }
      const frac = u32(b, pos + 4, le);
      r.index = this.count++;
      r.tsSec = u32(b, pos, le);
      // Out-of-range fractions occur in hand-made files; carry them into seconds.
      if (ns) {
        r.tsSec += Math.floor(frac / 1e9);
        r.tsNsec = frac % 1e9;
      } else {
        r.tsSec += Math.floor(frac / 1e6);
        r.tsNsec = (frac % 1e6) * 1000;
      }
      r.capturedLength = incl;
      r.originalLength = u32(b, pos + 12, le);
      r.data = b.subarray(pos + PCAP_RECORD_HEADER_BYTES, pos + total);
      pos += total;
      this.#fileOffset += total;
      onRecord(r);
    }
    this.needBytes = PCAP_RECORD_HEADER_BYTES;
    return pos;
  }
}

/** Encodes pcap headers; the writer adapter batches the bytes. Little-endian like x86 QEMU's filter-dump. */
export function encodePcapHeader(linkType: number, snapLen: number, nanosecond: boolean): Uint8Array {
  const h = new Uint8Array(PCAP_FILE_HEADER_BYTES);
  w32le(h, 0, nanosecond ? PCAP_MAGIC_NS : PCAP_MAGIC_US);
  h[4] = 2; // version 2.4
  h[6] = 4;
  w32le(h, 16, snapLen);
  w32le(h, 20, linkType);
  return h;
}

/** Writes one record header + data into `target` at `o`; returns the new offset. */
export function encodePcapRecordInto(
  target: Uint8Array,
  o: number,
  tsSec: number,
  tsNsec: number,
  nanosecond: boolean,
  data: Uint8Array,
  originalLength: number,
): number {
  w32le(target, o, tsSec);
  w32le(target, o + 4, nanosecond ? tsNsec : Math.floor(tsNsec / 1000));
  w32le(target, o + 8, data.length);
  w32le(target, o + 12, originalLength);
  target.set(data, o + PCAP_RECORD_HEADER_BYTES);
  return o + PCAP_RECORD_HEADER_BYTES + data.length;
}
