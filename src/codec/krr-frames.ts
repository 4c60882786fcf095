// Rebuilding received frames from KRR's network log (reference
// krr-network-log.md, "Mapping: received frame -> entries and SGs"): one entry
// per RX descriptor; its data SGs, then the 16-byte legacy descriptor
// write-back. A frame is the data SGs joined in file order up to the write-back
// with EOP. Anything odd is counted, never fatal: the log's structure is the
// parser's job, this only reads what the descriptors say.

import { u16le, u32le } from './bytes.ts';
import { type KrrEntry, type KrrSg, type KrrVisitor } from './krr-log.ts';

// Legacy e1000_rx_desc status and error bits (Intel 8254x manual §3.2.3.1–2).
export const RXD_STAT_DD = 0x01;
export const RXD_STAT_EOP = 0x02;
export const RXD_STAT_IXSM = 0x04;
export const RXD_STAT_VP = 0x08;
const STATUS_NAMES: readonly [number, string][] = [
  [0x01, 'DD'],
  [0x02, 'EOP'],
  [0x04, 'IXSM'],
  [0x08, 'VP'],
  [0x20, 'TCPCS'],
  [0x40, 'IPCS'],
  [0x80, 'PIF'],
];
const ERROR_NAMES: readonly [number, string][] = [
  [0x01, 'CE'],
  [0x02, 'SE'],
  [0x04, 'SEQ'],
  [0x10, 'CXE'],
  [0x20, 'TCPE'],
  [0x40, 'IPE'],
  [0x80, 'RXE'],
];
/** Offset of `status` in the 16-byte legacy write-back (buffer_addr u64, length u16, csum u16, status u8, errors u8, special u16). */
export const WRITEBACK_STATUS_AT = 12;
/** The FCS the descriptor length counts but the DMA never carries (RCTL.SECRC clear). */
export const FCS_BYTES = 4;
/** Frames longer than this without an EOP are dropped and counted (e1000 takes at most 16 KiB jumbo frames). */
export const KRR_MAX_FRAME_BYTES = 65536;

export interface Writeback {
  /** A guest-physical address (≤ 52 bits), or 0 for a null descriptor. */
  bufferAddr: number;
  length: number;
  csum: number;
  status: number;
  errors: number;
  special: number;
}

export function decodeWriteback(d: Uint8Array, out: Writeback): Writeback {
  out.bufferAddr = u32le(d, 4) * 4294967296 + u32le(d, 0);
  out.length = u16le(d, 8);
  out.csum = u16le(d, 10);
  out.status = d[WRITEBACK_STATUS_AT]!;
  out.errors = d[WRITEBACK_STATUS_AT + 1]!;
  out.special = u16le(d, 14);
  return out;
}

function bitNames(v: number, names: readonly [number, string][]): string[] {
  const out: string[] = [];
  for (const [bit, n] of names) if ((v & bit) !== 0) out.push(n);
  return out;
}

export function statusNames(status: number): string[] {
  return bitNames(status, STATUS_NAMES);
}

export function errorNames(errors: number): string[] {
  return bitNames(errors, ERROR_NAMES);
}

/** A rebuilt frame; the assembler reuses the object (copy `data` to keep it). */
export class KrrFrame {
  /** Index among rebuilt frames. */
  index = 0;
  data: Uint8Array = new Uint8Array(0);
  firstEntry = 0;
  lastEntry = 0;
  /** Of the entry holding the EOP write-back. */
  instCnt = -1;
  cpuId = -1;
  /** The stripped VLAN tag (write-back `special`) when status VP is set; -1 otherwise. */
  vlanTci = -1;
  errors = 0;
}

/** Counted oddities; each has a line in `krr-log info`. */
export class KrrFrameWarnings {
  /** Write-back with EOP when no data arrived since the last frame. */
  eopWithoutData = 0;
  /** Write-back without the DD bit (e1000 sets it on every descriptor it completes). */
  noDd = 0;
  /** A descriptor whose length is not its data bytes plus 0 to 4 FCS bytes. */
  lengthMismatch = 0;
  /** Write-back naming a buffer other than the one its data went to. */
  bufferMismatch = 0;
  /** Frames dropped for growing past KRR_MAX_FRAME_BYTES without an EOP. */
  oversize = 0;
  /** Data left without an EOP when the log ended. */
  unfinishedBytes = 0;
}

/** Visitor that rebuilds frames as the parser reads the log. */
export class KrrFrameAssembler implements KrrVisitor {
  readonly warnings = new KrrFrameWarnings();
  readonly writeback: Writeback = { bufferAddr: 0, length: 0, csum: 0, status: 0, errors: 0, special: 0 };
  frames = 0;
  frameBytes = 0;
  /** Entries holding only a write-back: the FCS tail of a frame, or a descriptor with a null buffer. */
  writebackOnlyEntries = 0;
  /** Lowest and highest write-back addresses (descriptor slots in the RX ring). */
  ringLow = -1;
  ringHigh = -1;
  readonly ringSlots = new Set<number>();
  readonly #frame = new KrrFrame();
  #buf = new Uint8Array(4096);
  #fill = 0;
  #entryData = 0;
  #entryFirstAddr = -1;
  #frameFirstEntry = -1;
  #dropping = false;
  readonly #onFrame: (f: KrrFrame, e: KrrEntry, wb: Writeback) => void;
  /** Called for every entry's write-back (the `entries` command prints it). */
  onWriteback: ((e: KrrEntry, sg: KrrSg, wb: Writeback) => void) | null = null;

  constructor(onFrame: (f: KrrFrame, e: KrrEntry, wb: Writeback) => void = () => {}) {
    this.#onFrame = onFrame;
  }

  entry(e: KrrEntry): void {
    this.#entryData = 0;
    this.#entryFirstAddr = -1;
    if (this.#frameFirstEntry < 0) this.#frameFirstEntry = e.index;
  }

  sg(e: KrrEntry, sg: KrrSg, data: Uint8Array): void {
    if (!sg.isWriteback) {
      if (this.#entryFirstAddr < 0) this.#entryFirstAddr = sg.addr;
      this.#entryData += data.length;
      this.#append(data);
      return;
    }
    const wb = decodeWriteback(data, this.writeback);
    this.#slot(sg.addr);
    if (this.onWriteback !== null) this.onWriteback(e, sg, wb);
    const w = this.warnings;
    if ((wb.status & RXD_STAT_DD) === 0) w.noDd++;
    if (this.#entryData === 0) this.writebackOnlyEntries++;
    else {
      const extra = wb.length - this.#entryData;
      if (extra < 0 || extra > FCS_BYTES) w.lengthMismatch++;
      if (wb.bufferAddr !== this.#entryFirstAddr) w.bufferMismatch++;
    }
    if ((wb.status & RXD_STAT_EOP) === 0) return;
    if (this.#dropping) {
      this.#dropping = false;
    } else if (this.#fill === 0) {
      w.eopWithoutData++;
    } else {
      const f = this.#frame;
      f.index = this.frames;
      f.data = this.#buf.subarray(0, this.#fill);
      f.firstEntry = this.#frameFirstEntry;
      f.lastEntry = e.index;
      f.instCnt = e.instCnt;
      f.cpuId = e.cpuId;
      f.vlanTci = (wb.status & RXD_STAT_VP) !== 0 ? wb.special : -1;
      f.errors = wb.errors;
      this.frames++;
      this.frameBytes += this.#fill;
      this.#onFrame(f, e, wb);
    }
    this.#fill = 0;
    this.#frameFirstEntry = -1;
  }

  entryEnd(_e: KrrEntry): void {}

  /** Call at the end of the log: data still waiting for an EOP is counted. */
  finish(): void {
    this.warnings.unfinishedBytes += this.#fill;
    this.#fill = 0;
  }

  #slot(addr: number): void {
    if (this.ringLow < 0 || addr < this.ringLow) this.ringLow = addr;
    if (addr > this.ringHigh) this.ringHigh = addr;
    // Bounded: a ring has at most 65536 descriptors (RDLEN / 16); more distinct addresses are not one ring.
    if (this.ringSlots.size < 65536) this.ringSlots.add(addr);
  }

  #append(data: Uint8Array): void {
    if (this.#dropping) return;
    const need = this.#fill + data.length;
    if (need > KRR_MAX_FRAME_BYTES) {
      this.warnings.oversize++;
      this.#dropping = true;
      this.#fill = 0;
      return;
    }
    if (need > this.#buf.length) {
      const next = new Uint8Array(Math.min(KRR_MAX_FRAME_BYTES, Math.max(need, this.#buf.length * 2)));
      next.set(this.#buf.subarray(0, this.#fill));
      this.#buf = next;
    }
    this.#buf.set(data, this.#fill);
    this.#fill = need;
  }
}
