// Comparing two byte ranges: a JS loop against Buffer#compare's native call,
// by length, to choose NATIVE_EQUAL_MIN_BYTES (src/codec/bytes.ts).
// Run: node dist/bench/bytes-equal.js

import { fmtRate, row, timeIt } from './bench-util.ts';

const nativeCompare = Buffer.prototype.compare;
const N = 2_000_000;
console.log('# equal ranges at offset 14 of two 2 KiB buffers; ns per compare, median of 5');
console.log(row(['length', 'JS loop ns', 'native ns', 'faster']));
for (const len of [8, 16, 24, 32, 48, 64, 96, 128, 256, 1472]) {
  const a = Buffer.alloc(2048, 7);
  const b = Buffer.alloc(2048, 7);
  let sink = 0;
  const loop = timeIt(() => {
    for (let k = 0; k < N; k++) {
      let eq = 1;
      for (let i = 0; i < len; i++) {
        if (a[14 + i] !== b[14 + i]) {
          eq = 0;
          break;
        }
      }
      sink += eq;
    }
  });
  const native = timeIt(() => {
    for (let k = 0; k < N; k++) sink += nativeCompare.call(a, b, 14, 14 + len, 14, 14 + len) === 0 ? 1 : 0;
  });
  if (sink < 0) console.log(fmtRate(sink));
  console.log(row([len, ((loop / N) * 1e9).toFixed(1), ((native / N) * 1e9).toFixed(1), loop < native ? 'loop' : 'native']));
}
