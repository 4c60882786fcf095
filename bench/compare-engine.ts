// The compare engine alone, in memory (no sockets): identical primary and
// secondary frames, interleaved as they arrive in lockstep.
// Run: node dist/bench/compare-engine.js

import { CompareEngine, type CompareMode, compareConfig } from '../src/engine/colo-compare/compare-engine.ts';
import { buildFrame } from '../test/helpers/build-packet.ts';
import { fmtRate, row, timeIt } from './bench-util.ts';

console.log('# compare engine in memory: identical UDP primary/secondary pairs; median of 5');
console.log(row(['case', 'pairs/s', 'ns/pair']));
for (const mode of ['qemu', 'extended'] as CompareMode[]) {
  for (const [size, flows] of [[64, 1], [64, 1000], [1514, 1], [1514, 1000]] as const) {
    const frames = Array.from({ length: flows }, (_, i) => buildFrame({ proto: 'udp', srcPort: 20000 + i, payload: new Uint8Array(size - 42) }));
    const N = 500_000;
    let released = 0;
    const t = timeIt(() => {
      const e = new CompareEngine(compareConfig({ mode }), { release: () => released++, checkpoint: () => {} });
      for (let i = 0; i < N; i++) {
        const f = frames[i % flows]!;
        e.primaryIn(f, 0, 0);
        e.secondaryIn(f, 0, 0);
      }
    }, 3, 1);
    console.log(row([`${mode} ${size} B, ${flows} flow${flows > 1 ? 's' : ''}`, fmtRate(N / t), ((t / N) * 1e9).toFixed(0)]));
  }
}
