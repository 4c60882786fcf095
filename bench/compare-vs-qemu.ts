// Compare-proxy throughput and latency, QEMU 7.2 colo-compare against
// `netrr compare --mode qemu`, the same C load driver for both in one run
// (bench/native/compare-driver.c, built here with cc): identical frames into
// primary_in and secondary_in over unix chardevs, released output counted on
// outdev, at most `window` frames unreleased. Rows: UDP datagrams (the same
// ones over and over) and TCP streams (each flow's sequence numbers advance).
// Columns:
// - driver ceiling: the driver against a C process that copies primary to
//   outdev, no compare;
// - floor: netrr's own pass-through relay between the same sockets: the same
//   `netrr compare` process after a `failover` command (both inputs read and
//   decoded, every primary straight to outdev, secondaries counted and
//   dropped), so what netrr's I/O path costs without the compare;
// - QEMU and netrr, and netrr as a share of the floor.
// Every implementation gets the same untimed warm-up first (a proxy runs for
// days; the first hundred thousand frames also pay for V8's compilation).
// Then latency at a light load: one pair at a time, primary written first,
// p50 and p99 from its write to its release.
// Run: node dist/bench/compare-vs-qemu.js [--quick]
// NETRR_BENCH_ONLY=text keeps the rows whose name contains text;
// NETRR_BENCH_KINDS=sink,floor,qemu,netrr the columns; NETRR_BENCH_NODE_ARGS
// (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") profiles the netrr proxy under load.

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtRate, median, row } from './bench-util.ts';

const NETRR_BIN = new URL('../../bin/netrr.js', import.meta.url).pathname;
const DRIVER_SRC = new URL('../../bench/native/compare-driver.c', import.meta.url).pathname;
const DRIVER = new URL('./native/compare-driver', import.meta.url).pathname;

if (!existsSync(DRIVER) || statSync(DRIVER).mtimeMs < statSync(DRIVER_SRC).mtimeMs) {
  mkdirSync(new URL('./native/', import.meta.url).pathname, { recursive: true });
  execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', DRIVER, DRIVER_SRC], { stdio: 'inherit' });
}

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 1 : 3;
/** Above the deep-queue depth, so neither side drops (QEMU's default 1024 would). */
const MAX_QUEUE = 8192;
/** Unreleased frames the driver allows in flight (the reference measurement used 256). */
const WINDOW = Number(process.env.NETRR_BENCH_WINDOW ?? 256);

type Kind = 'sink' | 'floor' | 'qemu' | 'netrr';

interface Case {
  name: string;
  proto: 'udp' | 'tcp';
  size: number;
  flows: number;
  frames: number;
  /** Primary frames the secondary trails by (deep queue); 0 = lockstep. */
  lag: number;
  window: number;
}

const scale = quick ? 0.25 : 1;
const allCases: Case[] = ([
  { name: 'UDP 64 B, 1 flow', proto: 'udp' as const, size: 64, flows: 1, frames: 400_000, lag: 0, window: WINDOW },
  { name: 'UDP 64 B, 1000 flows', proto: 'udp', size: 64, flows: 1000, frames: 400_000, lag: 0, window: WINDOW },
  { name: 'UDP 1514 B, 1 flow', proto: 'udp', size: 1514, flows: 1, frames: 200_000, lag: 0, window: WINDOW },
  { name: 'UDP 1514 B, 1000 flows', proto: 'udp', size: 1514, flows: 1000, frames: 200_000, lag: 0, window: WINDOW },
  { name: 'UDP 64 B, deep queue (4000)', proto: 'udp', size: 64, flows: 1, frames: 200_000, lag: 4000, window: 4256 },
  { name: 'TCP 1460 B segments, 1 flow', proto: 'tcp', size: 1514, flows: 1, frames: 200_000, lag: 0, window: WINDOW },
  { name: 'TCP 1460 B segments, 100 flows', proto: 'tcp', size: 1514, flows: 100, frames: 200_000, lag: 0, window: WINDOW },
] satisfies Case[]).map((c) => ({ ...c, frames: Math.round(c.frames * scale) }));
const ONLY = process.env.NETRR_BENCH_ONLY;
const cases = ONLY === undefined ? allCases : allCases.filter((c) => c.name.includes(ONLY));
const KINDS = (process.env.NETRR_BENCH_KINDS ?? 'sink,floor,qemu,netrr').split(',') as Kind[];

async function waitPath(paths: string[], child: ChildProcess): Promise<void> {
  const t0 = Date.now();
  while (!paths.every((p) => existsSync(p))) {
    if (child.exitCode !== null) throw new Error('implementation exited early');
    if (Date.now() - t0 > 10_000) throw new Error(`timeout waiting for ${paths.join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startImpl(kind: Kind, dir: string): Promise<ChildProcess> {
  let child: ChildProcess;
  const proxies = kind !== 'sink';
  if (kind === 'qemu') {
    const a = ['-machine', 'none', '-nodefaults', '-nographic', '-display', 'none', '-object', 'iothread,id=iot1'];
    for (const n of ['pri', 'sec', 'out']) a.push('-chardev', `socket,id=${n},path=${dir}/${n}.sock,server=on,wait=off`);
    a.push('-object', `colo-compare,id=c0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iot1,max_queue_size=${MAX_QUEUE}`);
    child = spawn('qemu-system-x86_64', a, { stdio: 'ignore' });
  } else if (kind === 'netrr' || kind === 'floor') {
    const nodeArgs = kind === 'netrr' ? (process.env.NETRR_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '') : [];
    const control = kind === 'floor' ? ['--control', `unix:${dir}/ctl.sock`] : [];
    child = spawn(process.execPath, [...nodeArgs, NETRR_BIN, 'compare', '--mode', 'qemu', '--max-queue-size', String(MAX_QUEUE), '--primary-in', `unix:${dir}/pri.sock,server=on`, '--secondary-in', `unix:${dir}/sec.sock,server=on`, '--outdev', `unix:${dir}/out.sock,server=on`, ...control], { stdio: 'ignore' });
  } else {
    child = spawn(DRIVER, ['sink', `${dir}/pri.sock`, `${dir}/out.sock`], { stdio: 'ignore' });
  }
  await waitPath(proxies ? [`${dir}/pri.sock`, `${dir}/sec.sock`, `${dir}/out.sock`] : [`${dir}/pri.sock`, `${dir}/out.sock`], child);
  if (kind === 'floor') {
    await waitPath([`${dir}/ctl.sock`], child);
    const r = spawnSync(process.execPath, [NETRR_BIN, 'ctl', `unix:${dir}/ctl.sock`, 'failover'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`floor: failover: ${r.stderr}`);
  }
  return child;
}

/** Runs the driver with `args` against a started implementation; returns its output line's numbers by key. */
function runDriver(args: string[], what: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const d = spawn(DRIVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    d.stdout.on('data', (b: Buffer) => (out += b.toString()));
    d.stderr.on('data', (b: Buffer) => (out += b.toString()));
    d.on('exit', (code) => {
      const fields: Record<string, number> = {};
      for (const m of out.matchAll(/(\w+) ([\d.]+)/g)) fields[m[1]!] = Number(m[2]);
      if (code === 0 && Object.keys(fields).length > 0) resolve(fields);
      else reject(new Error(`${what}: driver: ${out.trim()}`));
    });
  });
}

async function withImpl<T>(kind: Kind, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'nb-'));
  const child = await startImpl(kind, dir);
  try {
    return await fn(dir);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(kind === 'netrr' || kind === 'floor' ? 'SIGTERM' : 'SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

function throughput(kind: Kind, c: Case): Promise<number> {
  return withImpl(kind, async (dir) => {
    const sec = kind === 'sink' ? '-' : `${dir}/sec.sock`;
    const warmup = c.frames;
    const args = ['drive', `${dir}/pri.sock`, sec, `${dir}/out.sock`, String(c.size), String(c.flows), String(c.frames), String(c.window), String(c.lag), c.proto, String(warmup)];
    return (await runDriver(args, `${kind} ${c.name}`)).pps!;
  });
}

function latency(kind: 'qemu' | 'netrr', size: number): Promise<Record<string, number>> {
  return withImpl(kind, (dir) => runDriver(['latency', `${dir}/pri.sock`, `${dir}/sec.sock`, `${dir}/out.sock`, String(size), quick ? '500' : '2000', '200'], `${kind} latency`));
}

console.log(`# compare proxy: identical frames into primary/secondary, released frames counted; unix chardevs; C driver; ≤ ${WINDOW} unreleased; warm-up = as many frames as timed; median of ${ROUNDS}`);
console.log(row(['case', 'driver ceiling', 'netrr floor', 'QEMU 7.2 pps', 'netrr pps', 'netrr/QEMU', 'netrr/floor']));
for (const c of cases) {
  const res: Partial<Record<Kind, number>> = {};
  for (const kind of KINDS) {
    const xs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) xs.push(await throughput(kind, c));
    res[kind] = median(xs);
  }
  const f = (k: Kind): string => (res[k] === undefined ? '-' : fmtRate(res[k]));
  const ratio = (a: Kind, b: Kind, pct: boolean): string => {
    const x = res[a];
    const y = res[b];
    if (x === undefined || y === undefined) return '-';
    return pct ? `${((100 * x) / y).toFixed(0)} %` : `${(x / y).toFixed(1)}x`;
  };
  console.log(row([c.name, f('sink'), f('floor'), f('qemu'), f('netrr'), ratio('netrr', 'qemu', false), ratio('netrr', 'floor', true)]));
}

if (ONLY === undefined || 'latency'.includes(ONLY)) {
  console.log('# compare-path latency at a light load: one UDP pair every 200 µs, primary written first; µs from its write to its release; median of the rounds');
  console.log(row(['frame', 'QEMU p50', 'QEMU p99', 'netrr p50', 'netrr p99']));
  for (const size of [64, 1514]) {
    const cells: string[] = [];
    for (const kind of ['qemu', 'netrr'] as const) {
      const p50: number[] = [];
      const p99: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const r = await latency(kind, size);
        p50.push(r.p50!);
        p99.push(r.p99!);
      }
      cells.push(median(p50).toFixed(1), median(p99).toFixed(1));
    }
    console.log(row([`${size} B`, ...cells]));
  }
}
