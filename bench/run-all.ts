// Runs the in-process benchmarks in sequence (npm run bench). Each prints its
// own table. The compare-proxy comparison with QEMU drives real processes and
// takes minutes: run it alone with `node dist/bench/compare-vs-qemu.js`.
await import('./framing.ts');
console.log();
await import('./header-decode.ts');
console.log();
await import('./pcapng.ts');
console.log();
await import('./compare-engine.ts');
console.log();
await import('./bytes-equal.ts');
console.log();
await import('./views.ts');
console.log();
await import('./crc32.ts');
console.log();
await import('./log.ts');
