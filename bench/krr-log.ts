// KRR network-log export speed on a large log (default 1 GiB; KRR logs grow
// with the recording), against `netrr log export` and `qemu-log export` of the
// same frames in the same run, each export in its own process so that its
// peak RSS shows the reader streams (memory bounded, not the file's size).
// Run: node dist/bench/krr-log.js            (NETRR_BENCH_KRR_MB=256 for a quicker run)

import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { krrLayoutByName } from '../src/codec/krr-layout.ts';
import { w32be } from '../src/codec/bytes.ts';
import { LOG_HIGH_WATER_BYTES, LogWriter } from '../src/io/log-writer.ts';
import { buildFrame } from '../test/helpers/build-packet.ts';
import { KrrLogWriter } from '../test/helpers/krr-writer.ts';
import { median, row } from './bench-util.ts';

const CHILD = process.argv[2] === '--child';

async function child(kind: string, input: string, output: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  if (kind === 'krr') await (await import('../src/cli/cmd-krr-log.ts')).krrLogExportCommand(input, output, {});
  else if (kind === 'netrr') await (await import('../src/cli/cmd-log.ts')).logExportCommand(input, output);
  else await (await import('../src/cli/cmd-qemu-log.ts')).qemuLogExportCommand(input, output, {});
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  // VmHWM of this process's own address space: getrusage's maxRSS would include the parent's size at fork.
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  process.stdout.write(JSON.stringify({ secs, maxRssMiB: Number(hwm?.[1] ?? 0) / 1024 }));
}

if (CHILD) {
  await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
} else {
  const targetBytes = Number(process.env.NETRR_BENCH_KRR_MB ?? 1024) * 1048576;
  const dir = mkdtempSync(join(process.env.NETRR_BENCH_DIR ?? tmpdir(), 'netrr-krrbench-'));
  try {
    // A download-like mix: nine 1514-byte segments to one 66-byte ACK-sized frame.
    const big = buildFrame({ proto: 'tcp', payload: new Uint8Array(1460).fill(0x5a) });
    const small = buildFrame({ proto: 'tcp', payload: new Uint8Array(12) });
    const layoutName = process.env.NETRR_BENCH_KRR_LAYOUT ?? 'list-docheck';
    const krr = join(dir, 'kernel_rr_network.log');
    const fd = openSync(krr, 'w');
    const kw = new KrrLogWriter({ layout: krrLayoutByName(layoutName)! });
    let frames = 0;
    let written = 0;
    while (written < targetBytes) {
      for (let i = 0; i < 1000; i++, frames++) kw.frame({ data: frames % 10 === 9 ? small : big });
      const b = kw.take();
      writeSync(fd, b);
      written += b.length;
    }
    closeSync(fd);
    // The same frames as a netrr log and as a QEMU replay log (0xe0200c: INSTRUCTION + ASYNC_NET per frame).
    const nlog = join(dir, 'same.nrrlog');
    const lw = await LogWriter.create(nlog, { sync: { kind: 'none' }, segmentBytes: 64 * 1024 * 1024 * 1024 });
    // Past its high-water mark the writer asks its sources to pause, as a recorder's would; wait for it to fall.
    let resume: (() => void) | null = null;
    lw.onPressure = (high) => {
      if (!high) resume?.();
    };
    for (let i = 0; i < frames; i++) {
      if (lw.append(1, 0, 0, i % 10 === 9 ? small : big) < 0) throw new Error('log writer refused a frame');
      if (lw.pendingBytes > LOG_HIGH_WATER_BYTES) await new Promise<void>((r) => (resume = r));
    }
    await lw.close();
    const qlog = join(dir, 'replay.bin');
    const qfd = openSync(qlog, 'w');
    const head = new Uint8Array(12);
    w32be(head, 0, 0xe0200c);
    writeSync(qfd, head);
    const chunk = new Uint8Array(4 * 1024 * 1024);
    let fill = 0;
    for (let i = 0; i < frames; i++) {
      const f = i % 10 === 9 ? small : big;
      if (fill + 14 + f.length > chunk.length) {
        writeSync(qfd, chunk, 0, fill);
        fill = 0;
      }
      chunk[fill] = 0; // INSTRUCTION
      w32be(chunk, fill + 1, 10000);
      chunk[fill + 5] = 9; // ASYNC_NET: filter index, flags, array
      chunk[fill + 6] = 0;
      w32be(chunk, fill + 7, 0);
      w32be(chunk, fill + 11, f.length);
      chunk.set(f, fill + 15);
      fill += 15 + f.length;
    }
    chunk[fill++] = 39; // END
    writeSync(qfd, chunk, 0, fill);
    closeSync(qfd);

    const inputs: [string, string, string][] = [
      ['krr', krr, `krr-log export (${layoutName})`],
      ['netrr', nlog, 'log export (netrr log)'],
      ['qemu', qlog, 'qemu-log export (0xe0200c)'],
    ];
    const runs = new Map<string, { secs: number[]; rss: number[] }>();
    const out = join(dir, 'out.pcapng');
    const me = new URL(import.meta.url).pathname;
    // Interleaved rounds, so that drift on a shared machine hits every row alike.
    for (let round = 0; round < 3; round++) {
      for (const [kind, file] of inputs) {
        const r = JSON.parse(execFileSync(process.execPath, [me, '--child', kind, file, out], { encoding: 'utf8' })) as { secs: number; maxRssMiB: number };
        const e = runs.get(kind) ?? { secs: [], rss: [] };
        e.secs.push(r.secs);
        e.rss.push(r.maxRssMiB);
        runs.set(kind, e);
        rmSync(out, { force: true });
      }
    }
    console.log(`${frames} frames (90% 1514 B, 10% 66 B); median of 3 interleaved runs, each export in its own process`);
    console.log(row(['export → pcapng', 'input MB', 'MB/s', 'frames/s', 'peak RSS MiB']));
    for (const [kind, file, label] of inputs) {
      const e = runs.get(kind)!;
      const secs = median(e.secs);
      const bytes = statSync(file).size;
      console.log(row([label, (bytes / 1e6).toFixed(0), (bytes / secs / 1e6).toFixed(0), (frames / secs / 1e3).toFixed(0) + ' k', Math.max(...e.rss).toFixed(0)]));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
