// netrr log throughput and the record path's added latency.
//  - append: frames/s and MB/s at 64 B and 1514 B with group commit (sync
//    interval:100), against dd writing the same number of bytes to the same
//    disk in the same run;
//  - read and pcapng export (MB/s), against tshark reading the exported file;
//  - record path latency: frame in → frame out through a Recorder with an
//    in-process peer pair (unix sockets), p50/p99, for both orders
//    (log-first, the default, and forward-first);
//  - record path throughput: frames/s streamed guest → upstream through the
//    Recorder, both orders, 64 B and 1514 B.
// Run: node dist/bench/log.js            (all cases)
//      node dist/bench/log.js record     (the record-path cases only)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RecordOrder, Recorder } from '../src/app/recorder.ts';
import { logSegments, scanSegment } from '../src/io/log-file.ts';
import { LogWriter } from '../src/io/log-writer.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { logExportCommand } from '../src/cli/cmd-log.ts';
import { fmtRate, row } from './bench-util.ts';

const dir = mkdtempSync(join(process.env.NETRR_BENCH_DIR ?? tmpdir(), 'netrr-logbench-'));

async function appendBench(size: number, n: number, sync: 'none' | 'interval'): Promise<void> {
  const file = join(dir, `a${size}.nrrlog`);
  const frame = new Uint8Array(size).fill(7);
  const t0 = process.hrtime.bigint();
  const w = await LogWriter.create(file, { sync: sync === 'none' ? { kind: 'none' } : { kind: 'interval', ms: 100 } });
  for (let i = 0; i < n; i++) {
    w.append(i & 1, 0, 0, frame);
    // Yield so that group commits run, as a recorder's event loop would (without waiting for them).
    if ((i & 0x3fff) === 0) await new Promise((r) => setImmediate(r));
  }
  await w.close();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = statSync(file).size;
  const d0 = process.hrtime.bigint();
  execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'dd.bin')}`, 'bs=1M', `count=${Math.ceil(bytes / 1048576)}`, 'conv=fdatasync'], { stdio: 'ignore' });
  const dsecs = Number(process.hrtime.bigint() - d0) / 1e9;
  console.log(row([`append ${size} B, sync ${sync === 'none' ? 'at close' : 'every 100 ms'}`, fmtRate(n / secs), (bytes / secs / 1e6).toFixed(0), (bytes / dsecs / 1e6).toFixed(0), `${((bytes / secs / (bytes / dsecs)) * 100).toFixed(0)}%`]));
  if (sync !== 'none') return;
  // Read and export the same file.
  const r0 = process.hrtime.bigint();
  let frames = 0;
  for (const s of logSegments(file)) await scanSegment(s, () => frames++);
  const rsecs = Number(process.hrtime.bigint() - r0) / 1e9;
  const pcap = join(dir, `a${size}.pcapng`);
  const e0 = process.hrtime.bigint();
  await logExportCommand(file, pcap);
  const esecs = Number(process.hrtime.bigint() - e0) / 1e9;
  const t1 = process.hrtime.bigint();
  execFileSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.len'], { stdio: ['ignore', 'ignore', 'ignore'], maxBuffer: 1 << 30 });
  const tsecs = Number(process.hrtime.bigint() - t1) / 1e9;
  console.log(row([`read ${size} B`, fmtRate(frames / rsecs), (bytes / rsecs / 1e6).toFixed(0), '', '']));
  console.log(row([`export → pcapng ${size} B`, fmtRate(frames / esecs), (bytes / esecs / 1e6).toFixed(0), `tshark ${(statSync(pcap).size / tsecs / 1e6).toFixed(0)}`, `${(tsecs / esecs).toFixed(1)}x faster`]));
}

async function recorderPair(order: RecordOrder, name: string): Promise<{ rec: Recorder; guest: ReturnType<typeof createEndpoint>; up: ReturnType<typeof createEndpoint> }> {
  const rec = new Recorder({ guest: `unix:${dir}/g.sock,server=on`, upstream: `unix:${dir}/u.sock,server=on`, log: join(dir, `${name}.nrrlog`), sync: { kind: 'interval', ms: 100 }, order });
  await rec.start();
  const guest = createEndpoint(`unix:${dir}/g.sock`);
  const up = createEndpoint(`unix:${dir}/u.sock`);
  await guest.start();
  await up.start();
  await guest.waitConnected(5000);
  await up.waitConnected(5000);
  await rec.guest.waitConnected(5000);
  await rec.network.waitConnected(5000);
  return { rec, guest, up };
}

async function latencyBench(n: number, order: RecordOrder): Promise<void> {
  const { rec, guest, up } = await recorderPair(order, `lat-${order}`);
  const frame = new Uint8Array(64);
  const lat: number[] = [];
  let t0 = 0n;
  let resolve: (() => void) | null = null;
  up.onFrame = () => {
    lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    resolve?.();
  };
  // Warm-up (JIT, socket buffers), not counted.
  for (let i = 0; i < 2000; i++) {
    await new Promise<void>((r) => {
      resolve = r;
      guest.send(frame, 0);
    });
  }
  lat.length = 0;
  for (let i = 0; i < n; i++) {
    await new Promise<void>((r) => {
      resolve = r;
      t0 = process.hrtime.bigint();
      guest.send(frame, 0);
    });
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number): string => lat[Math.floor((lat.length - 1) * p)]!.toFixed(0);
  console.log(row([`record path ${order} 64 B, ${n} one at a time`, `p50 ${pct(0.5)} µs`, `p99 ${pct(0.99)} µs`, `max ${lat.at(-1)!.toFixed(0)} µs`, '']));
  await guest.close();
  await up.close();
  await rec.stop();
}

async function throughputBench(n: number, size: number, order: RecordOrder): Promise<void> {
  const { rec, guest, up } = await recorderPair(order, `tp-${order}-${size}`);
  const frame = new Uint8Array(size).fill(3);
  let got = 0;
  let done: (() => void) | null = null;
  up.onFrame = () => {
    if (++got === n) done?.();
  };
  const t0 = process.hrtime.bigint();
  const finished = new Promise<void>((r) => (done = r));
  for (let i = 0; i < n; ) {
    while (i < n && guest.writable) {
      guest.send(frame, 0);
      i++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await finished;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(row([`record path ${order} ${size} B, ${n} streamed`, fmtRate(n / secs), ((n * size) / secs / 1e6).toFixed(0), '', '']));
  await guest.close();
  await up.close();
  await rec.stop();
}

console.log(`# netrr log: append with group commit vs dd (same bytes, same disk: ${dir}), read, export vs tshark; record-path latency`);
console.log(row(['case', 'frames/s', 'MB/s', 'dd MB/s', 'vs dd']));
try {
  // Latency first: after the append cases the kernel is still writing back gigabytes of dirty
  // pages, and the log's group commits would queue behind them (p99 rose by 30-50 µs).
  for (const order of ['log-first', 'forward-first'] as const) await latencyBench(20_000, order);
  for (const size of [64, 1514]) for (const order of ['log-first', 'forward-first'] as const) await throughputBench(size === 64 ? 1_000_000 : 300_000, size, order);
  if (process.argv[2] !== 'record') {  await appendBench(64, 2_000_000, 'none');
  await appendBench(64, 2_000_000, 'interval');
  await appendBench(1514, 500_000, 'none');
  await appendBench(1514, 500_000, 'interval');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
