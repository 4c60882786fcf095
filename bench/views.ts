// The cost of one view of 64 bytes: a Buffer's subarray (Node's override
// builds a FastBuffer) against a plain Uint8Array's and the constructor. The
// read path takes one per frame, the compare engine one per release.
// Run: node dist/bench/views.js

import { row, timeIt } from './bench-util.ts';

const N = 5_000_000;
const buf = Buffer.allocUnsafeSlow(1 << 18);
const u8 = new Uint8Array(1 << 18);
let sink = 0;
// One loop per kind, written out: a shared call site would make all three megamorphic.
const results: [string, number][] = [
  ['Buffer#subarray', timeIt(() => {
    for (let i = 0; i < N; i++) sink += buf.subarray((i & 1023) * 64, (i & 1023) * 64 + 64).length;
  })],
  ['Uint8Array#subarray', timeIt(() => {
    for (let i = 0; i < N; i++) sink += u8.subarray((i & 1023) * 64, (i & 1023) * 64 + 64).length;
  })],
  ['new Uint8Array(buffer, offset, length)', timeIt(() => {
    for (let i = 0; i < N; i++) sink += new Uint8Array(u8.buffer, (i & 1023) * 64, 64).length;
  })],
];
console.log('# one 64-byte view; ns per view, median of 5');
console.log(row(['view', 'ns']));
for (const [name, t] of results) console.log(row([name, ((t / N) * 1e9).toFixed(1)]));
if (sink < 0) console.log(sink);
