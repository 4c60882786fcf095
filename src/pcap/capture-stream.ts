// Streams a pcap or pcapng file through its parser with a bounded window:
// bytes are read into the window's tail, whole records are parsed in place,
// and only the unparsed tail (part of one record) is moved to the front.
// Memory is the window, never the file.

import { NetrrError } from '../errors.ts';
import type { CaptureInterface, CaptureRecord } from './capture-record.ts';
import {
  PCAP_FILE_HEADER_BYTES,
  PcapRecordParser,
  type PcapHeader,
  isPcapMagic,
  parsePcapHeader,
  pcapInterface,
} from './pcap-format.ts';
import { PcapngParser, isPcapngMagic } from './pcapng-format.ts';

export type CaptureFormat = 'pcap' | 'pcapng';

/** Default window: 1 MiB; grows only for a single larger record. */
export const CAPTURE_WINDOW_BYTES = 1024 * 1024;

export class CaptureStream {
  format: CaptureFormat | null = null;
  pcapHeader: PcapHeader | null = null;
  pcapng: PcapngParser | null = null;
  #pcap: PcapRecordParser | null = null;
  #pcapIfaces: CaptureInterface[] = [];
  #onRecord: (r: CaptureRecord) => void;
  #win: Uint8Array;
  #start = 0;
  #end = 0;
  #consumed = 0;

  constructor(onRecord: (r: CaptureRecord) => void, windowBytes = CAPTURE_WINDOW_BYTES) {
    this.#onRecord = onRecord;
    this.#win = new Uint8Array(windowBytes);
  }

  get interfaces(): readonly CaptureInterface[] {
    return this.pcapng !== null ? this.pcapng.interfaces : this.#pcapIfaces;
  }

  get packets(): number {
    return this.#pcap?.count ?? this.pcapng?.count ?? 0;
  }

  /** File bytes fully parsed. */
  get bytesConsumed(): number {
    return this.#consumed;
  }

  /** Free space at the window's tail, at least `min` bytes (compacting or growing as needed). */
  writable(min = 64 * 1024): Uint8Array {
    const need = this.#need();
    const want = Math.max(min, need - (this.#end - this.#start));
    if (this.#win.length - this.#end < want) {
      const live = this.#end - this.#start;
      const size = Math.max(this.#win.length, live + want);
      const target = size > this.#win.length ? new Uint8Array(size) : this.#win;
      if (target === this.#win) this.#win.copyWithin(0, this.#start, this.#end);
      else target.set(this.#win.subarray(this.#start, this.#end));
      this.#win = target;
      this.#start = 0;
      this.#end = live;
    }
    return this.#win.subarray(this.#end);
  }

  /** Declares that n bytes were written into writable(), and parses. */
  commit(n: number): void {
    this.#end += n;
    this.#parse();
  }

  /** Copies a chunk in (for sources that own their buffers) and parses. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length) {
      const w = this.writable(chunk.length - pos);
      const take = Math.min(w.length, chunk.length - pos);
      w.set(chunk.subarray(pos, pos + take));
      pos += take;
      this.commit(take);
    }
  }

  /** Declares end of input: leftover bytes mean a cut-short file. */
  end(): void {
    const left = this.#end - this.#start;
    if (this.format === null) {
      throw new NetrrError('ERR_PCAP_BAD_MAGIC', left === 0 ? 'empty file: not a pcap or pcapng capture' : 'not a pcap or pcapng capture (file too short)');
    }
    if (left > 0) {
      throw new NetrrError(
        'ERR_PCAP_TRUNCATED',
        `capture cut short: ${left} trailing bytes of an incomplete ${this.format === 'pcap' ? 'record' : 'block'} at offset ${this.#consumed} (needed ${this.#need()})`,
        { offset: this.#consumed },
      );
    }
  }

  #need(): number {
    if (this.#pcap !== null) return this.#pcap.needBytes;
    if (this.pcapng !== null) return this.pcapng.needBytes;
    return PCAP_FILE_HEADER_BYTES;
  }

  #parse(): void {
    const b = this.#win;
    if (this.format === null) {
      const avail = this.#end - this.#start;
      if (avail < 4) return;
      const head = b.subarray(this.#start, this.#end);
      if (isPcapngMagic(head)) {
        this.format = 'pcapng';
        this.pcapng = new PcapngParser();
      } else if (isPcapMagic(head)) {
        if (avail < PCAP_FILE_HEADER_BYTES) return;
        this.format = 'pcap';
        this.pcapHeader = parsePcapHeader(head);
        this.#pcapIfaces = [pcapInterface(this.pcapHeader)];
        this.#pcap = new PcapRecordParser(this.pcapHeader);
        this.#start += PCAP_FILE_HEADER_BYTES;
        this.#consumed += PCAP_FILE_HEADER_BYTES;
      } else {
        const magic = Array.from(head.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join('');
        throw new NetrrError('ERR_PCAP_BAD_MAGIC', `not a pcap or pcapng capture (magic 0x${magic})`, { offset: 0 });
      }
    }
    const before = this.#start;
    const parser = this.#pcap ?? this.pcapng;
    if (parser === null) return;
    this.#start = parser.parse(b, this.#start, this.#end, this.#onRecord);
    this.#consumed += this.#start - before;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
  }
}
