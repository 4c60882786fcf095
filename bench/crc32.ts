// CRC-32: slice-by-8 in JS against zlib's native crc32, per input size; the
// crossover sets NATIVE_CRC32_MIN_BYTES in src/codec/crc32.ts.
// Run: node dist/bench/crc32.js

import * as zlib from 'node:zlib';
import { crc32Js } from '../src/codec/crc32.ts';

const SIZES = [64, 128, 256, 512, 1514, 9000];
const buf = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
const native = zlib.crc32;

function timeNs(fn: (o: number, n: number) => number, n: number): number {
  const iters = Math.max(20_000, Math.floor(4e8 / (n + 64)));
  let x = 0;
  for (let i = 0; i < 10_000; i++) x ^= fn((i * 64) & 0xfff00, n);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) x ^= fn((i * 64) & 0xfff00, n);
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  if (x === 0.5) console.log(x); // keep x alive
  return ns;
}

if (typeof native !== 'function') console.log('zlib.crc32 is not available in this Node; only slice-by-8 is used');
else console.log('size  slice-by-8      zlib.crc32     native/js speed-up');
for (const n of typeof native === 'function' ? SIZES : []) {
  // Median of 3, each a fresh run over the same inputs.
  const med = (f: () => number): number => [f(), f(), f()].sort((a, b) => a - b)[1]!;
  const js = med(() => timeNs((o, len) => crc32Js(buf, o, o + len), n));
  const nat = med(() => timeNs((o, len) => native(buf.subarray(o, o + len)), n));
  console.log(`${String(n).padStart(5)} ${js.toFixed(0).padStart(7)} ns ${((n / js) * 1e3).toFixed(0).padStart(5)} MB/s ${nat.toFixed(0).padStart(6)} ns ${((n / nat) * 1e3).toFixed(0).padStart(5)} MB/s  ${(js / nat).toFixed(2)}x`);
}
