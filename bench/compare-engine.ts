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

// Issue 8 item 5: a flood of new flows while the secondary is silent. Every
// tracked connection holds a queued primary, so each new flow evicts one; the
// victim choice used to scan the whole LRU list (2.7-2.9k frames/s at 16 384
// connections). Primaries only, one frame per flow, table bounds as shown.
console.log('# new-flow flood, silent secondary (every connection busy): primaries/s');
console.log(row(['case', 'primaries/s', 'ns/frame']));
for (const maxConnections of [16, 16384]) {
  const N = 200_000;
  const frames = Array.from({ length: 4096 }, (_, i) => buildFrame({ proto: 'udp', srcPort: 1024 + (i % 60000), payload: new Uint8Array(22) }));
  const t = timeIt(() => {
    const e = new CompareEngine(compareConfig({ mode: 'qemu', maxConnections, maxQueueSize: 1 << 20, maxQueuedBytes: 1 << 30 }), { release: () => {}, checkpoint: () => {} });
    for (let i = 0; i < N; i++) {
      // A distinct flow per frame: vary the destination address too.
      const f = frames[i & 4095]!;
      f[30] = (i >>> 12) & 0xff;
      f[31] = (i >>> 20) & 0xff;
      e.primaryIn(f, 0, 0);
    }
  }, 3, 1);
  console.log(row([`qemu 64 B, ${maxConnections} connections`, fmtRate(N / t), ((t / N) * 1e9).toFixed(0)]));
}
