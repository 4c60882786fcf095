// pcapng writer: one little-endian section, interfaces with name, description
// and nanosecond resolution, Enhanced Packet Blocks with epb_flags
// (direction), comments and custom options (draft-ietf-opsawg-pcapng §3.5.1).
// netrr's custom options carry its own metadata (epoch ids, verdicts, replay
// positions) under NETRR_PEN.

import { NetrrError } from '../errors.ts';
import { OutputBuffer } from './output-buffer.ts';
import { w32le } from '../codec/bytes.ts';
import {
  BT_EPB,
  BT_IDB,
  BT_SHB,
  BYTE_ORDER_MAGIC,
  EPB_FLAGS,
  IF_DESCRIPTION,
  IF_NAME,
  IF_TSRESOL,
  OPT_COMMENT,
  OPT_CUSTOM_BINARY,
  OPT_CUSTOM_STRING,
  SHB_HARDWARE,
  SHB_OS,
  SHB_USERAPPL,
} from './pcapng-format.ts';
import { nanosToHiLo } from './timestamp.ts';

/**
 * Private Enterprise Number for netrr's custom options. netrr has no IANA PEN
 * of its own yet; 32473 is the one RFC 5612 reserves for documentation and
 * examples, so it can never collide with a real vendor's options.
 */
export const NETRR_PEN = 32473;

export interface InterfaceSpec {
  readonly linkType: number;
  readonly snapLen?: number;
  readonly name?: string;
  readonly description?: string;
}

export interface PacketMeta {
  /** epb_flags; bits 0-1 are the direction (1 inbound, 2 outbound). */
  readonly flags?: number;
  readonly comments?: readonly string[];
  /** netrr custom options: text values go out as 2988, binary as 2989, all under NETRR_PEN. */
  readonly custom?: readonly (string | Uint8Array)[];
}

const encoder = new TextEncoder();
const hiLo = { hi: 0, lo: 0 };
/** Byte lengths of the packet's custom options, measured once per packet (sizing, then writing). */
const customLengths: number[] = [];

function optionBytes(valueLength: number): number {
  return 4 + ((valueLength + 3) & ~3);
}

export class PcapngWriter {
  readonly out = new OutputBuffer();
  packets = 0;
  #interfaces: InterfaceSpec[] = [];
  readonly #section: { userAppl?: string; hardware?: string; os?: string; comment?: string };

  constructor(section: { userAppl?: string; hardware?: string; os?: string; comment?: string } = {}) {
    this.#section = section;
    this.#sectionHeader();
  }

  #sectionHeader(): void {
    const section = this.#section;
    const opts: [number, Uint8Array][] = [];
    if (section.comment !== undefined) opts.push([OPT_COMMENT, encoder.encode(section.comment)]);
    if (section.hardware !== undefined) opts.push([SHB_HARDWARE, encoder.encode(section.hardware)]);
    if (section.os !== undefined) opts.push([SHB_OS, encoder.encode(section.os)]);
    opts.push([SHB_USERAPPL, encoder.encode(section.userAppl ?? 'netrr')]);
    const fixed = new Uint8Array(16);
    w32le(fixed, 0, BYTE_ORDER_MAGIC);
    fixed[4] = 1; // version 1.0
    // Section length -1: unknown (we stream).
    fixed.fill(0xff, 8, 16);
    this.#block(BT_SHB, fixed, opts);
  }

  get interfaceCount(): number {
    return this.#interfaces.length;
  }

  /**
   * Starts the section over: its header and every interface again, as a new
   * file needs (a capture reopened after logrotate moved the old one).
   */
  restartSection(): void {
    this.#sectionHeader();
    const ifaces = this.#interfaces;
    this.#interfaces = [];
    for (const i of ifaces) this.addInterface(i);
  }

  /** Adds an interface (nanosecond timestamps); returns its id. */
  addInterface(spec: InterfaceSpec): number {
    const fixed = new Uint8Array(8);
    fixed[0] = spec.linkType & 0xff;
    fixed[1] = (spec.linkType >>> 8) & 0xff;
    w32le(fixed, 4, spec.snapLen ?? 0);
    const opts: [number, Uint8Array][] = [];
    if (spec.name !== undefined) opts.push([IF_NAME, encoder.encode(spec.name)]);
    if (spec.description !== undefined) opts.push([IF_DESCRIPTION, encoder.encode(spec.description)]);
    opts.push([IF_TSRESOL, Uint8Array.of(9)]);
    this.#block(BT_IDB, fixed, opts);
    this.#interfaces.push(spec);
    return this.#interfaces.length - 1;
  }

  /** Writes one Enhanced Packet Block. The packet path without meta allocates nothing. */
  writePacket(
    interfaceId: number,
    tsSec: number,
    tsNsec: number,
    data: Uint8Array,
    originalLength = data.length,
    meta?: PacketMeta,
  ): void {
    if (interfaceId < 0 || interfaceId >= this.#interfaces.length) {
      throw new NetrrError('ERR_PCAPNG_BAD_INTERFACE', `no interface ${interfaceId} in this pcapng writer`);
    }
    const padded = (data.length + 3) & ~3;
    let optLen = 0;
    let comments: Uint8Array[] | undefined;
    if (meta !== undefined) {
      if (meta.flags !== undefined) optLen += optionBytes(4);
      if (meta.comments !== undefined) {
        comments = meta.comments.map((c) => encoder.encode(c));
        for (const c of comments) optLen += optionBytes(c.length);
      }
      if (meta.custom !== undefined) {
        for (let i = 0; i < meta.custom.length; i++) {
          customLengths[i] = customLength(meta.custom[i]!);
          optLen += optionBytes(4 + customLengths[i]!);
        }
      }
      if (optLen > 0) optLen += 4; // opt_endofopt
    }
    const total = 8 + 20 + padded + optLen + 4;
    const out = this.out;
    const o = out.reserve(total);
    const b = out.buf;
    w32le(b, o, BT_EPB);
    w32le(b, o + 4, total);
    w32le(b, o + 8, interfaceId);
    nanosToHiLo(tsSec, tsNsec, hiLo);
    w32le(b, o + 12, hiLo.hi);
    w32le(b, o + 16, hiLo.lo);
    w32le(b, o + 20, data.length);
    w32le(b, o + 24, originalLength);
    b.set(data, o + 28);
    let p = o + 28 + data.length;
    while (p < o + 28 + padded) b[p++] = 0;
    if (optLen > 0 && meta !== undefined) {
      if (meta.flags !== undefined) {
        p = putOption(b, p, EPB_FLAGS, undefined, 4);
        w32le(b, p - 4, meta.flags);
      }
      if (comments !== undefined) for (const c of comments) p = putOption(b, p, OPT_COMMENT, c, c.length);
      if (meta.custom !== undefined) {
        for (let i = 0; i < meta.custom.length; i++) {
          const c = meta.custom[i]!;
          const start = p;
          const n = customLengths[i]!;
          p = putOption(b, p, typeof c === 'string' ? OPT_CUSTOM_STRING : OPT_CUSTOM_BINARY, undefined, 4 + n);
          w32le(b, start + 4, NETRR_PEN);
          // Custom values are written in place: no encoded copy per option per packet.
          if (typeof c !== 'string') b.set(c, start + 8);
          else if (n === c.length) for (let i = 0; i < n; i++) b[start + 8 + i] = c.charCodeAt(i);
          else encoder.encodeInto(c, b.subarray(start + 8, start + 8 + n));
        }
      }
      w32le(b, p, 0); // opt_endofopt
      p += 4;
    }
    w32le(b, p, total);
    out.fill = o + total;
    this.packets++;
  }

  #block(type: number, fixed: Uint8Array, opts: [number, Uint8Array][]): void {
    let optLen = 0;
    for (const [, v] of opts) optLen += optionBytes(v.length);
    if (optLen > 0) optLen += 4;
    const total = 8 + fixed.length + optLen + 4;
    const o = this.out.reserve(total);
    const b = this.out.buf;
    w32le(b, o, type);
    w32le(b, o + 4, total);
    b.set(fixed, o + 8);
    let p = o + 8 + fixed.length;
    for (const [code, v] of opts) p = putOption(b, p, code, v, v.length);
    if (optLen > 0) {
      w32le(b, p, 0);
      p += 4;
    }
    w32le(b, p, total);
    this.out.fill = o + total;
  }
}

/** Bytes of a custom option's value: an ASCII string's length is its byte count, anything else is measured. */
function customLength(c: string | Uint8Array): number {
  if (typeof c !== 'string') return c.length;
  for (let i = 0; i < c.length; i++) if (c.charCodeAt(i) >= 0x80) return Buffer.byteLength(c, 'utf8');
  return c.length;
}

/** Writes an option header (and value, if given) with zero padding; returns the offset after it. */
function putOption(b: Uint8Array, p: number, code: number, value: Uint8Array | undefined, length: number): number {
  b[p] = code & 0xff;
  b[p + 1] = code >>> 8;
  b[p + 2] = length & 0xff;
  b[p + 3] = length >>> 8;
  const end = p + optionBytes(length);
  b.fill(0, p + 4, end);
  if (value !== undefined) b.set(value, p + 4);
  return end;
}
