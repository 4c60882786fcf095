// pcapng (draft-ietf-opsawg-pcapng): blocks of `type | total length | body |
// total length`, each section starting with a Section Header Block whose
// byte-order magic sets the endianness of everything up to the next section.
// Like the pcap parser, parse() consumes whole blocks from a window.

import { NetrrError } from '../errors.ts';
import { u16, u32 } from '../codec/bytes.ts';
import { type CaptureInterface, CaptureRecord } from './capture-record.ts';
import { div64, divide64 } from './timestamp.ts';

export const BT_SHB = 0x0a0d0d0a;
export const BT_IDB = 0x00000001;
export const BT_OPB = 0x00000002; // obsolete Packet Block
export const BT_SPB = 0x00000003;
export const BT_NRB = 0x00000004;
export const BT_ISB = 0x00000005;
export const BT_EPB = 0x00000006;
export const BT_DSB = 0x0000000a;
export const BT_CUSTOM = 0x00000bad;
export const BT_CUSTOM_NOCOPY = 0x40000bad;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const OPT_CUSTOM_STRING = 2988;
export const OPT_CUSTOM_BINARY = 2989;
export const OPT_CUSTOM_STRING_NOCOPY = 19372;
export const OPT_CUSTOM_BINARY_NOCOPY = 19373;
export const SHB_HARDWARE = 2;
export const SHB_OS = 3;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
export const IF_TSOFFSET = 14;
export const EPB_FLAGS = 2;
export const ISB_IFRECV = 4;
export const ISB_IFDROP = 5;

/** Smallest block: type, length, trailing length. */
export const BLOCK_MIN_BYTES = 12;
/** Largest block we accept; larger is corruption (16 MiB of packet plus headroom). */
export const BLOCK_MAX_BYTES = 16 * 1024 * 1024 + 64 * 1024;
/**
 * Interfaces kept per section, to decode its packets (the obsolete Packet
 * Block's interface id is 16 bits wide). More IDBs in one section are counted
 * and a packet naming one is a coded error: 1 M IDBs used to cost 729 MB.
 */
export const PCAPNG_MAX_SECTION_INTERFACES = 65536;
/** Sections and interfaces listed in full (for `pcap info`); the rest are counted. */
export const PCAPNG_MAX_LISTED = 1024;
/** Comments kept per section header (a 16 MiB SHB could hold 4 M empty ones); the rest are counted. */
export const PCAPNG_MAX_SECTION_COMMENTS = 64;



export function isPcapngMagic(b: Uint8Array): boolean {
  return b.length >= 4 && u32(b, 0, false) === BT_SHB;
}

/**
 * Walks an options list (code u16, length u16, value padded to 4). Stops at
 * opt_endofopt or at the end; a value running past the end stops the walk
 * (reported through the return value: false).
 */
export function walkOptions(
  b: Uint8Array,
  start: number,
  end: number,
  le: boolean,
  visit: (code: number, value: Uint8Array) => void,
): boolean {
  let pos = start;
  while (end - pos >= 4) {
    const code = u16(b, pos, le);
    const len = u16(b, pos + 2, le);
    if (code === OPT_ENDOFOPT) return true;
    if (end - pos - 4 < len) return false;
    visit(code, b.subarray(pos + 4, pos + 4 + len));
    pos += 4 + ((len + 3) & ~3);
  }
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export function optionString(value: Uint8Array): string {
  // Some writers include a trailing NUL; drop it.
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  return utf8.decode(value.subarray(0, end));
}

export interface PcapngSection {
  readonly index: number;
  readonly littleEndian: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly hardware: string | undefined;
  readonly os: string | undefined;
  readonly userAppl: string | undefined;
  readonly comments: readonly string[];
}

export interface InterfaceStats {
  received: number | undefined;
  dropped: number | undefined;
}

export class PcapngParser {
  readonly record = new CaptureRecord();
  /** The first PCAPNG_MAX_LISTED sections; sectionCount counts them all. */
  readonly sections: PcapngSection[] = [];
  /** The first PCAPNG_MAX_LISTED interfaces of the file; interfaceCount counts them all. */
  readonly interfaces: CaptureInterface[] = [];
  sectionCount = 0;
  interfaceCount = 0;
  /** IDBs past PCAPNG_MAX_SECTION_INTERFACES in their section: counted, not kept. */
  interfacesOverLimit = 0;
  /** Section comments past PCAPNG_MAX_SECTION_COMMENTS: counted, not kept. */
  commentsOverLimit = 0;
  /** Last Interface Statistics Block seen per listed interface (file-wide index). */
  readonly stats = new Map<number, InterfaceStats>();
  /** Blocks skipped because their type is unknown or not needed here. */
  skippedBlocks = 0;
  /** Option lists that ran past their block (options ignored, packet kept). */
  badOptionLists = 0;
  needBytes = 8;
  count = 0;
  #le = true;
  /** The current section's interfaces, by their id in the section. */
  #sectionIfaces: CaptureInterface[] = [];
  #fileOffset = 0;

  get fileOffset(): number {
    return this.#fileOffset;
  }

  parse(b: Uint8Array, start: number, end: number, onRecord: (r: CaptureRecord) => void): number {
    let pos = start;
    while (end - pos >= 8) {
      const type = u32(b, pos, this.#le);
      let le = this.#le;
      if (type === BT_SHB) {
        // The SHB's own byte order comes from its magic, which sits after the length.
        if (end - pos < 12) {
          this.needBytes = 12;
          return pos;
        }
        const bom = u32(b, pos + 8, true);
        if (bom === BYTE_ORDER_MAGIC) le = true;
        else if (u32(b, pos + 8, false) === BYTE_ORDER_MAGIC) le = false;
        else this.#bad(`section header at offset ${this.#fileOffset} has no byte-order magic`);
      } else if (this.sectionCount === 0) {
        throw new NetrrError('ERR_PCAPNG_NO_SECTION', 'pcapng file does not start with a section header block', {
          offset: this.#fileOffset,
        });
      }
      const total = u32(b, pos + 4, le);
      if (total < BLOCK_MIN_BYTES || total % 4 !== 0 || total > BLOCK_MAX_BYTES) {
        this.#bad(`block type 0x${type.toString(16)} at offset ${this.#fileOffset} has bad length ${total}`);
      }
      if (end - pos < total) {
        this.needBytes = total;
        return pos;
      }
      if (u32(b, pos + total - 4, le) !== total) {
        this.#bad(`block at offset ${this.#fileOffset}: trailing length differs from leading length ${total}`);
      }
      this.#block(type, le, b, pos + 8, pos + total - 4, onRecord);
      pos += total;
      this.#fileOffset += total;
    }
    this.needBytes = 8;
    return pos;
  }

  #bad(message: string): never {
    throw new NetrrError('ERR_PCAPNG_BAD_BLOCK', message, { offset: this.#fileOffset });
  }

  #block(
    type: number,
    le: boolean,
    b: Uint8Array,
    body: number,
    end: number,
    onRecord: (r: CaptureRecord) => void,
  ): void {
    switch (type) {
      case BT_SHB:
        return this.#shb(le, b, body, end);
      case BT_IDB:
        return this.#idb(b, body, end);
      case BT_EPB:
        return this.#epb(b, body, end, onRecord);
      case BT_SPB:
        return this.#spb(b, body, end, onRecord);
      case BT_OPB:
        return this.#opb(b, body, end, onRecord);
      case BT_ISB:
        return this.#isb(b, body, end);
      default:
        this.skippedBlocks++;
    }
  }

  #shb(le: boolean, b: Uint8Array, body: number, end: number): void {
    if (end - body < 16) this.#bad('section header block too short');
    const major = u16(b, body + 4, le);
    const minor = u16(b, body + 6, le);
    if (major !== 1) this.#bad(`unsupported pcapng version ${major}.${minor}`);
    this.#le = le;
    this.#sectionIfaces = [];
    let hardware: string | undefined;
    let os: string | undefined;
    let userAppl: string | undefined;
    const comments: string[] = [];
    const ok = walkOptions(b, body + 16, end, le, (code, v) => {
      if (code === OPT_COMMENT) {
        if (comments.length < PCAPNG_MAX_SECTION_COMMENTS) comments.push(optionString(v));
        else this.commentsOverLimit++;
      }
      else if (code === SHB_HARDWARE) hardware = optionString(v);
      else if (code === SHB_OS) os = optionString(v);
      else if (code === SHB_USERAPPL) userAppl = optionString(v);
    });
    if (!ok) this.badOptionLists++;
    const index = this.sectionCount++;
    if (this.sections.length < PCAPNG_MAX_LISTED) this.sections.push({ index, littleEndian: le, versionMajor: major, versionMinor: minor, hardware, os, userAppl, comments });
  }

  #idb(b: Uint8Array, body: number, end: number): void {
    const le = this.#le;
    if (end - body < 8) this.#bad('interface description block too short');
    if (this.#sectionIfaces.length >= PCAPNG_MAX_SECTION_INTERFACES) {
      this.interfacesOverLimit++;
      this.interfaceCount++;
      return;
    }
    let tsUnitsPerSec = 1e6;
    let tsOffsetSec = 0;
    let name: string | undefined;
    let description: string | undefined;
    const ok = walkOptions(b, body + 8, end, le, (code, v) => {
      if (code === IF_TSRESOL && v.length >= 1) {
        const r = v[0]!;
        // High bit set: negative power of 2; else of 10 (§4.2 if_tsresol).
        tsUnitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
      } else if (code === IF_TSOFFSET && v.length >= 8) {
        const hi = u32(v, le ? 4 : 0, le) | 0;
        const lo = u32(v, le ? 0 : 4, le);
        tsOffsetSec = hi * 4294967296 + lo;
      } else if (code === IF_NAME) name = optionString(v);
      else if (code === IF_DESCRIPTION) description = optionString(v);
    });
    if (!ok) this.badOptionLists++;
    if (!(tsUnitsPerSec >= 1 && tsUnitsPerSec <= 1e15)) this.#bad(`unsupported if_tsresol (${tsUnitsPerSec} units/s)`);
    const iface: CaptureInterface = {
      id: this.interfaceCount++,
      linkType: u16(b, body, le),
      snapLen: u32(b, body + 4, le),
      tsUnitsPerSec,
      tsOffsetSec,
      name,
      description,
      section: this.sectionCount - 1,
    };
    this.#sectionIfaces.push(iface);
    if (this.interfaces.length < PCAPNG_MAX_LISTED) this.interfaces.push(iface);
  }

  #iface(localId: number): CaptureInterface {
    const iface = this.#sectionIfaces[localId];
    if (iface === undefined) {
      const why = localId >= PCAPNG_MAX_SECTION_INTERFACES ? `interface ${localId}, beyond the ${PCAPNG_MAX_SECTION_INTERFACES} per section netrr keeps` : `undefined interface ${localId}`;
      throw new NetrrError('ERR_PCAPNG_BAD_INTERFACE', `packet at offset ${this.#fileOffset} names ${why}`, { offset: this.#fileOffset });
    }
    return iface;
  }

  #setTime(iface: CaptureInterface, hi: number, lo: number): void {
    const r = this.record;
    const ups = iface.tsUnitsPerSec;
    let sec: number;
    let rem: number;
    if (ups < 2 ** 36) {
      divide64(hi, lo, ups);
      sec = div64.quotient;
      rem = div64.remainder;
    } else {
      const units = (BigInt(hi) << 32n) | BigInt(lo);
      const u = BigInt(ups);
      sec = Number(units / u);
      rem = Number(units % u);
    }
    r.tsSec = sec + iface.tsOffsetSec;
    r.tsNsec = ups === 1e9 ? rem : ups === 1e6 ? rem * 1000 : Math.floor((rem / ups) * 1e9 + 1e-6);
  }

  #emitPacket(
    iface: CaptureInterface,
    b: Uint8Array,
    data: number,
    caplen: number,
    origlen: number,
    optStart: number,
    optEnd: number,
    onRecord: (r: CaptureRecord) => void,
  ): void {
    const r = this.record;
    r.index = this.count++;
    r.interfaceIndex = iface.id;
    r.iface = iface;
    r.linkType = iface.linkType;
    r.capturedLength = caplen;
    r.originalLength = origlen;
    r.data = b.subarray(data, data + caplen);
    r.options = b.subarray(optStart, optEnd);
    r.littleEndian = this.#le;
    r.flags = -1;
    if (optEnd > optStart) {
      // epb_flags is the one option we read for every packet; no closure, no allocation.
      const le = this.#le;
      let pos = optStart;
      while (optEnd - pos >= 4) {
        const code = u16(b, pos, le);
        const len = u16(b, pos + 2, le);
        if (code === OPT_ENDOFOPT) break;
        if (optEnd - pos - 4 < len) {
          this.badOptionLists++;
          break;
        }
        if (code === EPB_FLAGS && len === 4) r.flags = u32(b, pos + 4, le);
        pos += 4 + ((len + 3) & ~3);
      }
    }
    onRecord(r);
  }

  #epb(b: Uint8Array, body: number, end: number, onRecord: (r: CaptureRecord) => void): void {
    const le = this.#le;
    if (end - body < 20) this.#bad('enhanced packet block too short');
    const iface = this.#iface(u32(b, body, le));
    const caplen = u32(b, body + 12, le);
    const origlen = u32(b, body + 16, le);
    const data = body + 20;
    const padded = (caplen + 3) & ~3;
    if (caplen > end - data) this.#bad(`enhanced packet block at offset ${this.#fileOffset}: captured length ${caplen} exceeds the block`);
    this.#setTime(iface, u32(b, body + 4, le), u32(b, body + 8, le));
    const optStart = Math.min(data + padded, end);
    this.#emitPacket(iface, b, data, caplen, origlen, optStart, end, onRecord);
  }

  #spb(b: Uint8Array, body: number, end: number, onRecord: (r: CaptureRecord) => void): void {
    const le = this.#le;
    if (end - body < 4) this.#bad('simple packet block too short');
    const iface = this.#iface(0);
    const origlen = u32(b, body, le);
    // Captured length = min(original length, snap length), bounded by the block (§4.4).
    let caplen = origlen;
    if (iface.snapLen !== 0 && caplen > iface.snapLen) caplen = iface.snapLen;
    if (caplen > end - body - 4) caplen = end - body - 4;
    const r = this.record;
    r.tsSec = 0;
    r.tsNsec = 0;
    this.#emitPacket(iface, b, body + 4, caplen, origlen, end, end, onRecord);
  }

  #opb(b: Uint8Array, body: number, end: number, onRecord: (r: CaptureRecord) => void): void {
    const le = this.#le;
    if (end - body < 20) this.#bad('packet block too short');
    const iface = this.#iface(u16(b, body, le));
    const caplen = u32(b, body + 12, le);
    const origlen = u32(b, body + 16, le);
    if (caplen > end - body - 20) this.#bad(`packet block at offset ${this.#fileOffset}: captured length ${caplen} exceeds the block`);
    this.#setTime(iface, u32(b, body + 4, le), u32(b, body + 8, le));
    const optStart = Math.min(body + 20 + ((caplen + 3) & ~3), end);
    this.#emitPacket(iface, b, body + 20, caplen, origlen, optStart, end, onRecord);
  }

  #isb(b: Uint8Array, body: number, end: number): void {
    const le = this.#le;
    if (end - body < 12) this.#bad('interface statistics block too short');
    const iface = this.#iface(u32(b, body, le));
    const st: InterfaceStats = { received: undefined, dropped: undefined };
    const ok = walkOptions(b, body + 12, end, le, (code, v) => {
      if (v.length !== 8) return;
      const hi = u32(v, le ? 4 : 0, le);
      const lo = u32(v, le ? 0 : 4, le);
      const n = hi * 4294967296 + lo;
      if (code === ISB_IFRECV) st.received = n;
      else if (code === ISB_IFDROP) st.dropped = n;
    });
    if (!ok) this.badOptionLists++;
    if (iface.id < PCAPNG_MAX_LISTED) this.stats.set(iface.id, st);
  }
}

export interface PacketOptions {
  comments: string[];
  /** Custom options (codes 2988/2989/19372/19373): PEN and value. */
  custom: { code: number; pen: number; value: Uint8Array }[];
  flags: number | undefined;
}

/** Parses a record's options (comments, custom options, flags). Allocates: not for hot loops. */
export function readPacketOptions(options: Uint8Array, littleEndian: boolean): PacketOptions {
  const out: PacketOptions = { comments: [], custom: [], flags: undefined };
  walkOptions(options, 0, options.length, littleEndian, (code, v) => {
    if (code === OPT_COMMENT) out.comments.push(optionString(v));
    else if (code === EPB_FLAGS && v.length === 4) out.flags = u32(v, 0, littleEndian);
    else if (
      (code === OPT_CUSTOM_STRING || code === OPT_CUSTOM_BINARY || code === OPT_CUSTOM_STRING_NOCOPY || code === OPT_CUSTOM_BINARY_NOCOPY) &&
      v.length >= 4
    ) {
      out.custom.push({ code, pen: u32(v, 0, littleEndian), value: v.slice(4) });
    }
  });
  return out;
}
