// Writes KRR network logs the way KRR's save path does (reference
// krr-network-log.md): per received frame, e1000's receive path fills
// ceil((size + FCS) / rxbuf) descriptors; each is one entry struct, its data
// SGs and the 16-byte write-back, all raw x86-64 structs whose unset fields
// hold junk. Used by the tests and the export benchmark.

import { type KrrLayout, SG_ADDR_AT, SG_CHECKSUM_AT, SG_LEN_AT } from '../../src/codec/krr-layout.ts';
import { w16le, w32le, w64le } from '../../src/codec/bytes.ts';

export interface KrrFrameSpec {
  readonly data: Uint8Array;
  /** Strip this frame's 802.1Q tag into `special` (guest enabled VLAN stripping). */
  readonly vlanStrip?: boolean;
  /** Before this frame, a descriptor with a null buffer (an entry holding only its write-back). */
  readonly nullDescriptorBefore?: boolean;
  /** Hand the frame to the DMA in this many iovec pieces (one SG each). */
  readonly pieces?: number;
}

export interface KrrWriteOptions {
  readonly layout: KrrLayout;
  /** Guest receive buffer size from RCTL (Linux with MTU 1500: 2048). */
  readonly rxbuf?: number;
  readonly seed?: number;
  readonly ringBase?: bigint;
  readonly ringSize?: number;
  readonly firstInstCnt?: bigint;
  readonly cpus?: number;
}

const FCS = 4;

export class KrrLogWriter {
  readonly #o: Required<KrrWriteOptions>;
  #rng: number;
  #rdh = 0;
  #inst: bigint;
  #bufAddr = 0x10000000n;
  #chunks: Uint8Array[] = [];
  entries = 0;

  constructor(o: KrrWriteOptions) {
    this.#o = { rxbuf: 2048, seed: 1, ringBase: 0x3f400000n, ringSize: 256, firstInstCnt: 1_000_000n, cpus: 2, ...o };
    this.#rng = this.#o.seed >>> 0 || 1;
    this.#inst = this.#o.firstInstCnt;
  }

  #junk(b: Uint8Array): void {
    let x = this.#rng;
    for (let i = 0; i < b.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    this.#rng = x >>> 0 || 1;
  }

  #entry(sgs: { addr: bigint; data: Uint8Array }[]): void {
    const L = this.#o.layout;
    const e = new Uint8Array(L.entryBytes);
    this.#junk(e);
    w32le(e, 0, sgs.length);
    w32le(e, L.replayedSgsAt, 0);
    this.#inst += 1000n + BigInt(this.entries % 7);
    if (L.instCntAt >= 0) w64le(e, L.instCntAt, this.#inst);
    if (L.ripAt >= 0) w64le(e, L.ripAt, L.ripSet ? 0xffffffff81000000n + BigInt(this.entries) : 0n);
    if (L.followNumAt >= 0) w64le(e, L.followNumAt, BigInt(this.entries % 3));
    if (L.cpuIdAt >= 0) w32le(e, L.cpuIdAt, this.entries % this.#o.cpus);
    this.#chunks.push(e);
    for (const sg of sgs) {
      const h = new Uint8Array(L.sgBytes);
      this.#junk(h);
      w64le(h, SG_ADDR_AT, sg.addr);
      w64le(h, SG_LEN_AT, BigInt(sg.data.length));
      if (L.sgChecksumValid) {
        let sum = 0;
        for (const x of sg.data) sum += x;
        w64le(h, SG_CHECKSUM_AT, BigInt(sum));
      }
      this.#chunks.push(h, sg.data);
    }
    this.entries++;
  }

  #writeback(bufferAddr: bigint, length: number, status: number, special: number): { addr: bigint; data: Uint8Array } {
    const d = new Uint8Array(16);
    w64le(d, 0, bufferAddr);
    w16le(d, 8, length);
    w16le(d, 10, 0);
    d[12] = status;
    d[13] = 0;
    w16le(d, 14, special);
    const addr = this.#o.ringBase + 16n * BigInt(this.#rdh);
    this.#rdh = (this.#rdh + 1) % this.#o.ringSize;
    return { addr, data: d };
  }

  /** Appends one received frame (e1000_receive_iov's descriptor loop, QEMU 7.2 hw/net/e1000.c). */
  frame(f: KrrFrameSpec): void {
    let data = f.data;
    let special = 0;
    let vp = 0;
    if (f.vlanStrip === true) {
      special = (data[14]! << 8) | data[15]!;
      const untagged = new Uint8Array(data.length - 4);
      untagged.set(data.subarray(0, 12));
      untagged.set(data.subarray(16), 12);
      data = untagged;
      vp = 0x08;
    }
    if (data.length < 60) {
      const padded = new Uint8Array(60);
      padded.set(data);
      data = padded;
    }
    if (f.nullDescriptorBefore === true) this.#entry([this.#writeback(0n, 0, 0x01, 0)]);
    const size = data.length;
    const total = size + FCS;
    const rxbuf = this.#o.rxbuf;
    for (let off = 0; off < total; ) {
      const descSize = Math.min(total - off, rxbuf);
      const buf = this.#bufAddr;
      this.#bufAddr += BigInt(rxbuf);
      if (this.#bufAddr > 0x20000000n) this.#bufAddr = 0x10000000n;
      const sgs: { addr: bigint; data: Uint8Array }[] = [];
      if (off < size) {
        const piece = data.subarray(off, off + Math.min(size - off, rxbuf));
        const n = Math.max(1, Math.min(f.pieces ?? 1, piece.length));
        const step = Math.ceil(piece.length / n);
        for (let p = 0; p < piece.length; p += step) sgs.push({ addr: buf + BigInt(p), data: piece.slice(p, p + step) });
      }
      off += descSize;
      const last = off >= total;
      sgs.push(this.#writeback(buf, descSize, 0x01 | vp | (last ? 0x02 | 0x04 : 0), special));
      this.#entry(sgs);
    }
  }

  /** The log so far, as one buffer. */
  bytes(): Uint8Array {
    return Buffer.concat(this.#chunks);
  }

  /** Takes the bytes written since the last call (for streaming a large log to a file). */
  take(): Uint8Array {
    const b = Buffer.concat(this.#chunks);
    this.#chunks = [];
    return b;
  }
}
