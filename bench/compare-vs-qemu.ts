// Compare-proxy throughput, QEMU 7.2 colo-compare vs `netrr compare`, same
// driver, same run: identical UDP streams into primary_in and secondary_in
// over unix chardevs, released output counted on outdev, at most WINDOW
// frames unreleased. The "sink" row is the driver's own ceiling: the same
// driver writing to a process that only forwards primary to outdev, no compare.
// The driver is bench/native/compare-driver.c (built here with cc; its
// ceiling is 2.9 M pps at 64 B), or with NETRR_BENCH_DRIVER=js the Node
// driver below (ceiling under 1 M pps, too low to show 5x QEMU).
// Run: node dist/bench/compare-vs-qemu.js [--quick]

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { FrameDecoder, encodeRecord } from '../src/codec/qemu-framing.ts';
import { buildFrame } from '../test/helpers/build-packet.ts';
import { fmtRate, median, row } from './bench-util.ts';

const NETRR_BIN = new URL('../../bin/netrr.js', import.meta.url).pathname;
const DRIVER_SRC = new URL('../../bench/native/compare-driver.c', import.meta.url).pathname;
const DRIVER_BIN = new URL('./native/compare-driver', import.meta.url).pathname;

/** Builds the C driver (once per source change); null when there is no C compiler or NETRR_BENCH_DRIVER=js. */
function cDriver(): string | null {
  if (process.env.NETRR_BENCH_DRIVER === 'js') return null;
  try {
    if (!existsSync(DRIVER_BIN) || statSync(DRIVER_BIN).mtimeMs < statSync(DRIVER_SRC).mtimeMs) {
      mkdirSync(new URL('./native/', import.meta.url).pathname, { recursive: true });
      execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', DRIVER_BIN, DRIVER_SRC], { stdio: 'inherit' });
    }
    return DRIVER_BIN;
  } catch {
    console.log('# no C compiler: using the Node driver (NETRR_BENCH_DRIVER=js)');
    return null;
  }
}
const DRIVER = cDriver();
const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 1 : 3;
/** Above the deep-queue depth, so neither side drops (QEMU's default 1024 would). */
const MAX_QUEUE = 8192;
/** Unreleased frames the driver allows in flight (the reference measurement used 256). */
const WINDOW = Number(process.env.NETRR_BENCH_WINDOW ?? 256);

interface Case {
  name: string;
  size: number;
  flows: number;
  frames: number;
  /** Primary frames the secondary trails by (deep queue); 0 = lockstep. */
  lag: number;
  window: number;
}

const ONLY = process.env.NETRR_BENCH_ONLY;
const KINDS = (process.env.NETRR_BENCH_KINDS ?? 'sink,qemu,netrr').split(',') as ('sink' | 'qemu' | 'netrr')[];
const allCases: Case[] = [
  { name: '64 B, 1 flow', size: 64, flows: 1, frames: quick ? 50_000 : 200_000, lag: 0, window: WINDOW },
  { name: '64 B, 1000 flows', size: 64, flows: 1000, frames: quick ? 50_000 : 200_000, lag: 0, window: 256 },
  { name: '1514 B, 1 flow', size: 1514, flows: 1, frames: quick ? 20_000 : 100_000, lag: 0, window: WINDOW },
  { name: '1514 B, 1000 flows', size: 1514, flows: 1000, frames: quick ? 20_000 : 100_000, lag: 0, window: 256 },
  { name: '64 B, deep queue (4000 in flight)', size: 64, flows: 1, frames: quick ? 20_000 : 60_000, lag: 4000, window: 4256 },
];
const cases = ONLY === undefined ? allCases : allCases.filter((c) => c.name.includes(ONLY));

function framesFor(c: Case): Uint8Array[] {
  // UDP payload sized so that the Ethernet frame is c.size bytes (14 + 20 + 8 = 42 bytes of headers).
  return Array.from({ length: c.flows }, (_, i) => buildFrame({ proto: 'udp', srcPort: 20000 + i, payload: new Uint8Array(c.size - 42).fill(i & 0xff) }));
}

async function waitPath(paths: string[], child: ChildProcess): Promise<void> {
  const t0 = Date.now();
  while (!paths.every((p) => existsSync(p))) {
    if (child.exitCode !== null) throw new Error('implementation exited early');
    if (Date.now() - t0 > 10_000) throw new Error(`timeout waiting for ${paths.join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startImpl(kind: 'qemu' | 'netrr' | 'sink', dir: string): Promise<ChildProcess> {
  let child: ChildProcess;
  if (kind === 'qemu') {
    const a = ['-machine', 'none', '-nodefaults', '-nographic', '-display', 'none', '-object', 'iothread,id=iot1'];
    for (const n of ['pri', 'sec', 'out']) a.push('-chardev', `socket,id=${n},path=${dir}/${n}.sock,server=on,wait=off`);
    a.push('-object', `colo-compare,id=c0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iot1,max_queue_size=${MAX_QUEUE}`);
    child = spawn('qemu-system-x86_64', a, { stdio: 'ignore' });
  } else if (kind === 'netrr') {
    // NETRR_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") profiles the proxy under load.
    const nodeArgs = (process.env.NETRR_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    child = spawn(process.execPath, [...nodeArgs, NETRR_BIN, 'compare', '--mode', 'qemu', '--max-queue-size', String(MAX_QUEUE), '--primary-in', `unix:${dir}/pri.sock,server=on`, '--secondary-in', `unix:${dir}/sec.sock,server=on`, '--outdev', `unix:${dir}/out.sock,server=on`], { stdio: 'ignore' });
  } else if (DRIVER !== null) {
    // The ceiling: a process that copies pri → out with no compare.
    child = spawn(DRIVER, ['sink', `${dir}/pri.sock`, `${dir}/out.sock`], { stdio: 'ignore' });
  } else {
    // The ceiling: a process that bridges pri → out with no compare (and discards sec).
    child = spawn(process.execPath, [NETRR_BIN, 'bridge', '--a', `unix:${dir}/pri.sock,server=on`, '--b', `unix:${dir}/out.sock,server=on`], { stdio: 'ignore' });
  }
  await waitPath(kind === 'sink' ? [`${dir}/pri.sock`, `${dir}/out.sock`] : [`${dir}/pri.sock`, `${dir}/sec.sock`, `${dir}/out.sock`], child);
  return child;
}

/** Records per write: the driver pre-encodes them so that its own cost stays small. */
const RECORDS_PER_WRITE = 32;

function connect(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Pre-encodes RECORDS_PER_WRITE records starting at frame index i (cycling through frames). */
function chunkAt(frames: Uint8Array[], i: number): Buffer {
  const parts: Uint8Array[] = [];
  for (let k = 0; k < RECORDS_PER_WRITE; k++) parts.push(encodeRecord(frames[(i + k) % frames.length]!));
  return Buffer.concat(parts);
}

/** The C driver against a started implementation: prints "pps N". */
function driveC(driver: string, kind: 'qemu' | 'netrr' | 'sink', c: Case, dir: string): Promise<number> {
  const args = ['drive', `${dir}/pri.sock`, kind === 'sink' ? '-' : `${dir}/sec.sock`, `${dir}/out.sock`, String(c.size), String(c.flows), String(c.frames), String(c.window), String(c.lag)];
  return new Promise((resolve, reject) => {
    const d = spawn(driver, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    d.stdout.on('data', (b: Buffer) => (out += b.toString()));
    d.stderr.on('data', (b: Buffer) => (out += b.toString()));
    d.on('exit', (code) => {
      const m = /pps (\d+)/.exec(out);
      if (code === 0 && m !== null) resolve(Number(m[1]));
      else reject(new Error(`${kind} ${c.name}: driver: ${out.trim()}`));
    });
  });
}

async function drive(kind: 'qemu' | 'netrr' | 'sink', c: Case, frames: Uint8Array[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'nb-'));
  const child = await startImpl(kind, dir);
  if (DRIVER !== null) {
    try {
      return await driveC(DRIVER, kind, c, dir);
    } finally {
      child.kill(kind === 'netrr' ? 'SIGTERM' : 'SIGKILL');
      await new Promise((r) => setTimeout(r, kind === 'netrr' ? 300 : 0));
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const socks: net.Socket[] = [];
  try {
    const out = await connect(`${dir}/out.sock`);
    socks.push(out);
    const pri = await connect(`${dir}/pri.sock`);
    socks.push(pri);
    const sec = kind === 'sink' ? null : await connect(`${dir}/sec.sock`);
    if (sec !== null) socks.push(sec);
    let released = 0;
    let wake: (() => void) | null = null;
    const dec = new FrameDecoder({ vnetHdr: false }, () => released++);
    out.on('data', (chunk: Buffer) => {
      dec.push(chunk);
      if (wake !== null) {
        const w = wake;
        wake = null;
        w();
      }
    });
    // One pre-encoded chunk per frame-array phase (1 flow: all chunks equal; 1000 flows: 1000/32 phases).
    const phases = Math.max(1, Math.ceil(frames.length / RECORDS_PER_WRITE));
    const chunks = Array.from({ length: phases }, (_, i) => chunkAt(frames, i * RECORDS_PER_WRITE));
    const probe = encodeRecord(frames[0]!);
    // Our connect() may precede the peer's accept: probe until one pair comes out.
    for (let i = 0; i < 100 && released === 0; i++) {
      pri.write(probe);
      sec?.write(probe);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (released === 0) throw new Error(`${kind}: nothing released`);
    await new Promise((r) => setTimeout(r, 100));
    released = 0;
    const total = Math.ceil(c.frames / RECORDS_PER_WRITE) * RECORDS_PER_WRITE;
    let sentP = 0;
    let sentS = 0;
    let phaseP = 0;
    let phaseS = 0;
    const t0 = process.hrtime.bigint();
    let lastProgress = Date.now();
    let lastReleased = 0;
    while (released < total) {
      while (sentP < total && sentP - released + RECORDS_PER_WRITE <= c.window) {
        pri.write(chunks[phaseP++ % phases]!);
        sentP += RECORDS_PER_WRITE;
        if (sec !== null && sentP - sentS > c.lag) {
          sec.write(chunks[phaseS++ % phases]!);
          sentS += RECORDS_PER_WRITE;
        }
      }
      // The secondary catches up once the primary is done.
      while (sec !== null && sentP >= total && sentS < total) {
        sec.write(chunks[phaseS++ % phases]!);
        sentS += RECORDS_PER_WRITE;
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(() => {
          if (wake === r) {
            wake = null;
            r();
          }
        }, 20);
      });
      if (released !== lastReleased) {
        lastReleased = released;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > 5000) {
        throw new Error(`${kind} ${c.name}: stalled at ${released}/${total} released (${sentP} sent)`);
      }
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return total / secs;
  } finally {
    for (const s of socks) s.destroy();
    child.kill(kind === 'netrr' ? 'SIGTERM' : 'SIGKILL');
    await new Promise((r) => setTimeout(r, kind === 'netrr' ? 300 : 0));
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`# compare proxy: identical UDP into primary/secondary, released frames counted; unix chardevs; ${DRIVER !== null ? 'C' : 'Node'} driver; median of ${ROUNDS}`);
console.log(row(['case', 'driver ceiling', 'QEMU 7.2 pps', 'netrr pps', 'netrr/QEMU', 'netrr MB/s']));
for (const c of cases) {
  const frames = framesFor(c);
  const res: Record<string, number> = {};
  for (const kind of KINDS) {
    const xs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) xs.push(await drive(kind, c, frames));
    res[kind] = median(xs);
  }
  // NETRR_BENCH_KINDS may leave some out: show them as '-'.
  const f = (k: string): string => (res[k] === undefined ? '-' : fmtRate(res[k]));
  const ratio = res.netrr !== undefined && res.qemu !== undefined ? `${(res.netrr / res.qemu).toFixed(1)}x` : '-';
  console.log(row([c.name, f('sink'), f('qemu'), f('netrr'), ratio, res.netrr === undefined ? '-' : ((res.netrr * c.size) / 1e6).toFixed(0)]));
}
