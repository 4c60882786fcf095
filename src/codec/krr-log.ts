// Parser for KRR's `kernel_rr_network.log` (reference krr-network-log.md):
// entries one after another, each an `rr_dma_entry` struct, then `len` pairs of
// (`rr_sg_data` struct, that SG's data bytes). No header, no trailer, raw
// little-endian x86-64 structs whose unset fields hold heap junk, so only the
// fields the network path sets are read, and each is checked.
//
// Windowed like the other log parsers: parse() consumes whole items from
// b[start, end) and returns where it stopped; needBytes says how much the
// next item needs in one piece. An explicit state machine (entry head, SG
// head, SG data) so that an entry never has to fit in the window whole.

import { NetrrError } from '../errors.ts';
import { ByteReader } from './byte-reader.ts';
import { type KrrLayout, SG_ADDR_AT, SG_CHECKSUM_AT, SG_LEN_AT } from './krr-layout.ts';

/** Largest SG piece accepted: e1000's largest receive buffer (RCTL.BSEX, 16384 bytes). */
export const KRR_MAX_SG_BYTES = 16384;
/** SG count cap for the linked-list layouts, which have no array to bound it (the largest array's length). */
export const KRR_LIST_MAX_SGS = 8192;
/** Highest vCPU index accepted (KVM_MAX_VCPUS on x86 is 4096). */
export const KRR_MAX_CPU_ID = 4095;
/** The last SG of every entry is the 16-byte legacy RX descriptor write-back. */
export const KRR_WRITEBACK_BYTES = 16;

/** One entry (one RX descriptor); the parser reuses the object. */
export class KrrEntry {
  /** Position in the file, counting from 0. */
  index = -1;
  /** File offset of the entry struct. */
  offset = 0;
  sgCount = 0;
  /** Instruction count of the vCPU that closed the entry; -1 when the layout has none. */
  instCnt = -1;
  /** vCPU 0's RIP in arr1024-inst (a kernel address, past 2^53: a bigint); 0n in the later layouts, which always write 0; -1n when absent. */
  rip = -1n;
  /** Guest events queued when the entry closed; -1 when the layout has none. */
  followNum = -1;
  /** -1 when the layout has none. */
  cpuId = -1;
}

/** One SG piece; the parser reuses the object. */
export class KrrSg {
  /** Index within its entry. */
  index = 0;
  /** File offset of the SG struct. */
  offset = 0;
  /** Guest-physical destination (x86-64 physical addresses have at most 52 bits: a number is exact). */
  addr = 0;
  length = 0;
  /** True for the entry's last SG: the descriptor write-back. */
  isWriteback = false;
  /** Whether the stored checksum matches the data; null where the layout's checksum is junk. */
  checksumOk: boolean | null = null;
}

export interface KrrVisitor {
  entry(e: KrrEntry): void;
  /** `data` is a view valid during the call only. */
  sg(e: KrrEntry, sg: KrrSg, data: Uint8Array): void;
  entryEnd(e: KrrEntry): void;
}

const S_ENTRY = 0;
const S_SG = 1;
const S_DATA = 2;

export class KrrLogParser {
  readonly layout: KrrLayout;
  readonly entry = new KrrEntry();
  readonly sg = new KrrSg();
  needBytes: number;
  entries = 0;
  sgs = 0;
  dataBytes = 0;
  checksumOk = 0;
  checksumBad = 0;
  #state = S_ENTRY;
  #sumLo = 0;
  #sumHi = 0;
  #sgLeft = 0;
  #offset: number;
  readonly #visitor: KrrVisitor;
  readonly #r = new ByteReader(new Uint8Array(0), 0, 0, 0, 'ERR_KRR_LOG_TRUNCATED');
  readonly #maxSgs: number;

  constructor(layout: KrrLayout, visitor: KrrVisitor, startOffset = 0) {
    this.layout = layout;
    this.#visitor = visitor;
    this.#offset = startOffset;
    this.needBytes = layout.entryBytes;
    this.#maxSgs = layout.sgArray > 0 ? layout.sgArray : KRR_LIST_MAX_SGS;
  }

  /** File offset of the next unparsed byte. */
  get offset(): number {
    return this.#offset;
  }

  /** True between entries: a file that ends here ends cleanly. */
  get atBoundary(): boolean {
    return this.#state === S_ENTRY;
  }

  /** What the parser was in the middle of, for a cut-short report. */
  describeState(): string {
    if (this.#state === S_ENTRY) return `between entries (entry ${this.entries} would start at offset ${this.#offset})`;
    const e = this.entry;
    if (this.#state === S_SG) return `inside entry ${e.index} (offset ${e.offset}): SG ${this.sg.index + (this.#sgLeft === e.sgCount ? 0 : 1)} of ${e.sgCount} starts at offset ${this.#offset}`;
    return `inside entry ${e.index} (offset ${e.offset}): SG ${this.sg.index} at offset ${this.sg.offset} claims ${this.sg.length} data bytes from offset ${this.#offset}`;
  }

  parse(b: Uint8Array, start: number, end: number): number {
    let pos = start;
    const L = this.layout;
    for (;;) {
      if (this.#state === S_ENTRY) {
        if (end - pos < L.entryBytes) {
          this.needBytes = L.entryBytes;
          return pos;
        }
        this.#readEntry(b, pos);
        pos += L.entryBytes;
        this.#offset += L.entryBytes;
        this.#state = S_SG;
        this.#sgLeft = this.entry.sgCount;
        this.sg.index = -1;
        this.#visitor.entry(this.entry);
      } else if (this.#state === S_SG) {
        if (end - pos < L.sgBytes) {
          this.needBytes = L.sgBytes;
          return pos;
        }
        this.#readSg(b, pos);
        pos += L.sgBytes;
        this.#offset += L.sgBytes;
        this.#state = S_DATA;
      } else {
        const n = this.sg.length;
        if (end - pos < n) {
          this.needBytes = n;
          return pos;
        }
        const data = b.subarray(pos, pos + n);
        if (L.sgChecksumValid) {
          const ok = this.#sumHi === 0 && byteSum(data) === this.#sumLo;
          this.sg.checksumOk = ok;
          if (ok) this.checksumOk++;
          else this.checksumBad++;
        }
        pos += n;
        this.#offset += n;
        this.dataBytes += n;
        this.sgs++;
        this.#visitor.sg(this.entry, this.sg, data);
        if (--this.#sgLeft === 0) {
          this.#state = S_ENTRY;
          this.entries++;
          this.#visitor.entryEnd(this.entry);
        } else {
          this.#state = S_SG;
        }
      }
    }
  }

  #bad(what: string, at: number): never {
    throw new NetrrError('ERR_KRR_LOG_BAD_ENTRY', `${what} (layout ${this.layout.name})`, { offset: at });
  }

  #readEntry(b: Uint8Array, pos: number): void {
    const L = this.layout;
    const e = this.entry;
    const r = this.#r.reset(b, pos, pos + L.entryBytes, this.#offset - pos);
    const at = this.#offset;
    e.index = this.entries;
    e.offset = at;
    const len = r.i32le('entry len');
    if (len < 1 || len > this.#maxSgs) {
      this.#bad(`entry ${e.index} at offset ${at} claims ${len} SGs; ${L.sgArray > 0 ? `this layout's array holds 1 to ${L.sgArray}` : `1 to ${KRR_LIST_MAX_SGS} accepted`}`, at);
    }
    e.sgCount = len;
    r.pos = pos + L.replayedSgsAt;
    const replayed = r.i32le('replayed_sgs');
    // The network path always writes 0 here (reference: "Fields the network path sets").
    if (replayed !== 0) this.#bad(`entry ${e.index} at offset ${at} has replayed_sgs ${replayed}; a recorded entry has 0`, at + L.replayedSgsAt);
    // Counts below 2^53 (an instruction count that large is 35 days of guest time at 3 GHz); ERR_VALUE_RANGE beyond.
    e.instCnt = L.instCntAt < 0 ? -1 : ((r.pos = pos + L.instCntAt), r.u64leNumber('inst_cnt'));
    // Only arr1024-inst stores a RIP; later layouts write 0 (reference: "Fields the network path sets").
    e.rip = L.ripAt < 0 ? -1n : L.ripSet ? ((r.pos = pos + L.ripAt), r.u64le('rip')) : 0n;
    e.followNum = L.followNumAt < 0 ? -1 : ((r.pos = pos + L.followNumAt), r.u64leNumber('follow_num'));
    if (L.cpuIdAt < 0) e.cpuId = -1;
    else {
      r.pos = pos + L.cpuIdAt;
      const cpu = r.i32le('cpu_id');
      if (cpu < 0 || cpu > KRR_MAX_CPU_ID) this.#bad(`entry ${e.index} at offset ${at} names vCPU ${cpu}`, at + L.cpuIdAt);
      e.cpuId = cpu;
    }
  }

  #readSg(b: Uint8Array, pos: number): void {
    const s = this.sg;
    const e = this.entry;
    const r = this.#r.reset(b, pos, pos + this.layout.sgBytes, this.#offset - pos);
    s.index++;
    s.offset = this.#offset;
    r.pos = pos + SG_ADDR_AT;
    const addrLo = r.u32le('SG addr');
    const addrHi = r.u32le('SG addr');
    if (addrHi >= 1 << 20) this.#bad(`SG ${s.index} of entry ${e.index} at offset ${s.offset} names address 0x${addrHi.toString(16)}${addrLo.toString(16).padStart(8, '0')}, beyond x86-64's 52-bit physical addresses`, s.offset);
    s.addr = addrHi * 4294967296 + addrLo;
    r.pos = pos + SG_LEN_AT;
    const lo = r.u32le('SG len');
    const hi = r.u32le('SG len');
    if (hi !== 0 || lo > KRR_MAX_SG_BYTES) {
      this.#bad(`SG ${s.index} of entry ${e.index} at offset ${s.offset} claims ${(BigInt(hi) << 32n) | BigInt(lo)} bytes; an e1000 receive buffer holds at most ${KRR_MAX_SG_BYTES}`, s.offset + SG_LEN_AT);
    }
    s.length = lo;
    s.isWriteback = s.index === e.sgCount - 1;
    if (s.isWriteback && lo !== KRR_WRITEBACK_BYTES) {
      this.#bad(`entry ${e.index} at offset ${e.offset} ends with a ${lo}-byte SG at offset ${s.offset}; the last SG of an entry is the ${KRR_WRITEBACK_BYTES}-byte descriptor write-back`, s.offset + SG_LEN_AT);
    }
    r.pos = pos + SG_CHECKSUM_AT;
    this.#sumLo = r.u32le('SG checksum');
    this.#sumHi = r.u32le('SG checksum');
    s.checksumOk = null;
  }
}

/** KRR's SG checksum: the sum of the data bytes as an unsigned long (at most 16384 × 255, so a number is exact). */
export function byteSum(data: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i]!;
  return s;
}
