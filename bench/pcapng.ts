// pcapng write and read throughput against tshark reading the same file in
// the same run. Run: node dist/bench/pcapng.js [packets]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaptureFile } from '../src/io/capture-file.ts';
import { PcapngWriter } from '../src/pcap/pcapng-writer.ts';
import { fmtRate, row, timeIt, timeItAsync } from './bench-util.ts';

const dir = mkdtempSync(join(tmpdir(), 'netrr-bench-'));
const N = Number(process.argv[2] ?? 1_000_000);
console.log(`# pcapng: ${N / 1e6} M packets per file; netrr median of 3 (write) / 3 (read); tshark one run on the same file`);
console.log(row(['case', 'packets/s', 'MB/s', 'vs tshark']));
try {
  for (const size of [64, 1514]) {
    const file = join(dir, `b${size}.pcapng`);
    const frame = new Uint8Array(size).fill(0x11);
    const write = (): void => {
      const fd = openSync(file, 'w');
      const w = new PcapngWriter();
      w.addInterface({ linkType: 1 });
      for (let i = 0; i < N; i++) {
        w.writePacket(0, 1_700_000_000 + (i >> 20), i & 0xfffff, frame, size, i % 64 === 0 ? { flags: 1 } : undefined);
        if (w.out.shouldFlush) writeSync(fd, w.out.take()!);
      }
      const rest = w.out.take();
      if (rest) writeSync(fd, rest);
      closeSync(fd);
    };
    const tW = timeIt(write, 3, 1);
    const bytes = statSync(file).size;
    let count = 0;
    const tR = await timeItAsync(async () => {
      count = 0;
      await readCaptureFile(file, () => {
        count++;
      });
    });
    if (count !== N) throw new Error(`read ${count} of ${N}`);
    const t0 = process.hrtime.bigint();
    execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.len'], { stdio: ['ignore', 'ignore', 'ignore'] });
    const tT = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(row([`write ${size} B`, fmtRate(N / tW), (bytes / tW / 1e6).toFixed(0), '']));
    console.log(row([`read ${size} B`, fmtRate(N / tR), (bytes / tR / 1e6).toFixed(0), `${(tT / tR).toFixed(1)}x faster`]));
    console.log(row([`tshark -T fields -e frame.len ${size} B`, fmtRate(N / tT), (bytes / tT / 1e6).toFixed(0), '']));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
