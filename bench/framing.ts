// Framing codec throughput in memory: decode (chunks as a socket delivers
// them, 64 KiB) and encode (RecordBatch, as endpoints write; into fresh
// batches, the anchor, and into recycled ones, as endpoints do since
// 2026-11-30), 64 B and 1514 B frames. Run: node dist/bench/framing.js

import { FrameDecoder, recordWireBytes } from '../src/codec/qemu-framing.ts';
import { RecordBatch } from '../src/codec/record-batch.ts';
import { fmtRate, row, timeIt } from './bench-util.ts';

const CHUNK_BYTES = 64 * 1024;
const STREAM_BYTES = 128 * 1024 * 1024;

console.log(`# framing codec, in memory; median of 5 rounds over a ${STREAM_BYTES >> 20} MiB stream, ${CHUNK_BYTES >> 10} KiB read chunks`);
console.log(row(['case', 'frames/s', 'GB/s (payload)', 'GB/s (wire)']));
for (const size of [64, 1514]) {
  for (const vnet of [false, true]) {
    const frame = new Uint8Array(size).fill(0x5a);
    const per = recordWireBytes(size, vnet);
    const n = Math.floor(STREAM_BYTES / per);
    // Encode into batches, as an endpoint does before write().
    const batches: Uint8Array[] = [];
    const encode = (): void => {
      batches.length = 0;
      const b = new RecordBatch(vnet, CHUNK_BYTES);
      for (let i = 0; i < n; i++) {
        if (!b.fits(size)) batches.push(b.take()!);
        b.append(frame, vnet ? 10 : 0);
      }
      const last = b.take();
      if (last) batches.push(last);
    };
    const tEnc = timeIt(encode);
    // Decode the same bytes cut into fixed 64 KiB chunks (records straddle chunk edges).
    const whole = new Uint8Array(n * per);
    let o = 0;
    for (const b of batches) {
      whole.set(b, o);
      o += b.length;
    }
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < whole.length; i += CHUNK_BYTES) chunks.push(whole.subarray(i, i + CHUNK_BYTES));
    let got = 0;
    const decode = (): void => {
      got = 0;
      const d = new FrameDecoder({ vnetHdr: vnet }, () => {
        got++;
      });
      for (const c of chunks) d.push(c);
    };
    const tDec = timeIt(decode);
    if (got !== n) throw new Error(`decoded ${got} of ${n}`);
    const label = `${size} B${vnet ? ' +vnet' : ''}`;
    console.log(row([`decode ${label}`, fmtRate(n / tDec), ((n * size) / tDec / 1e9).toFixed(2), ((n * per) / tDec / 1e9).toFixed(2)]));
    console.log(row([`encode ${label}`, fmtRate(n / tEnc), ((n * size) / tEnc / 1e9).toFixed(2), ((n * per) / tEnc / 1e9).toFixed(2)]));
    // The same, each batch recycled once "written" (as an endpoint does in its write callback):
    // the copy lands in memory already touched instead of a fresh 64 KiB buffer.
    const recycled = (): void => {
      const b = new RecordBatch(vnet, CHUNK_BYTES);
      for (let i = 0; i < n; i++) {
        if (!b.fits(size)) b.recycle(b.take()!);
        b.append(frame, vnet ? 10 : 0);
      }
      b.take();
    };
    const tRec = timeIt(recycled);
    console.log(row([`encode ${label}, batches recycled`, fmtRate(n / tRec), ((n * size) / tRec / 1e9).toFixed(2), ((n * per) / tRec / 1e9).toFixed(2)]));
    const both = tEnc + tDec;
    console.log(row([`decode+encode ${label}`, fmtRate(n / both), ((n * size) / both / 1e9).toFixed(2), ((n * per) / both / 1e9).toFixed(2)]));
  }
}
