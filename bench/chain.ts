// netrr chain between two unix sockets, in one process with its peers:
// frames/s guest → network with no filter (against netrr bridge, the anchor,
// in the same run; since 2026-11-30 the bridge is itself a chain with no
// filters, so the two rows measure the same path), with one buffer filter committed every 1, 100 and 10 000
// frames, and with five pass-through filters (dumps to /dev/null); 64 B and
// 1514 B. Then the release latency of a 10 000-frame epoch (commit → last
// frame at the network): with the reader in this process, and with a C
// reader in another process beside the floor of the same bytes written by
// Node straight to it; and the buffer filter's own cost per frame in memory.
// Run: node dist/bench/chain.js

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bridge } from '../src/app/bridge.ts';
import { Chain } from '../src/app/chain.ts';
import { BufferFilter } from '../src/engine/filters/buffer-filter.ts';
import { parseFilterList } from '../src/engine/filters/filter-spec.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { fmtRate, median, row } from './bench-util.ts';

const dir = mkdtempSync(join(tmpdir(), 'netrr-chainbench-'));
let k = 0;

interface Rig {
  send: ReturnType<typeof createEndpoint>;
  recv: ReturnType<typeof createEndpoint>;
  commit?: () => void;
  /** Frames the buffer holds (chain rigs with a buffer). */
  held?: () => number;
  stop: () => Promise<void>;
}

async function connect(g: string, n: string): Promise<{ send: ReturnType<typeof createEndpoint>; recv: ReturnType<typeof createEndpoint> }> {
  const send = createEndpoint(`unix:${g}`);
  const recv = createEndpoint(`unix:${n}`);
  await send.start();
  await recv.start();
  await send.waitConnected(5000);
  await recv.waitConnected(5000);
  return { send, recv };
}

async function bridgeRig(): Promise<Rig> {
  const g = join(dir, `g${k}.sock`);
  const n = join(dir, `n${k++}.sock`);
  const b = new Bridge({ a: `unix:${g},server=on`, b: `unix:${n},server=on` });
  await b.start();
  const eps = await connect(g, n);
  await b.a.waitConnected(5000);
  await b.b.waitConnected(5000);
  return { ...eps, stop: () => b.stop(100) };
}

async function chainRig(filters: string[], commitEvery = 0): Promise<Rig> {
  const g = join(dir, `g${k}.sock`);
  const n = join(dir, `n${k++}.sock`);
  const c = new Chain({ guest: `unix:${g},server=on`, network: `unix:${n},server=on`, filters: parseFilterList(filters) });
  await c.start();
  const eps = await connect(g, n);
  await c.guest.waitConnected(5000);
  await c.network.waitConnected(5000);
  const rig: Rig = { ...eps, stop: () => c.stop(100) };
  if (c.filters.some((f) => f.kind === 'buffer')) {
    rig.held = () => (c.filters[0]!.report() as { backlogFrames: number }).backlogFrames;
    rig.commit = () => {
      const { closed } = c.command('epoch-begin', {}) as { closed: number };
      c.command('epoch-commit', { epoch: closed });
    };
  }
  if (commitEvery > 0) {
    // The controller, in process: count frames at the buffer's input and commit every `commitEvery`.
    let seen = 0;
    const inner = c.guest.onFrame;
    c.guest.onFrame = (f, v) => {
      inner(f, v);
      if (++seen % commitEvery === 0) {
        const { closed } = c.command('epoch-begin', {}) as { closed: number };
        c.command('epoch-commit', { epoch: closed });
      }
    };
  }
  return rig;
}

/** Streams n frames sender → receiver as fast as the sender may; frames/s (the last epoch is committed at the end). */
async function stream(rig: Rig, n: number, size: number): Promise<number> {
  const frame = new Uint8Array(size).fill(9);
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  rig.recv.onFrame = () => {
    if (++got === n) done();
  };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; ) {
    while (i < n && rig.send.writable) {
      rig.send.send(frame, 0);
      i++;
    }
    await new Promise((r) => setImmediate(r));
  }
  if (rig.commit !== undefined) {
    // Whatever is still held after the last full epoch: wait for it to arrive in the buffer, then commit.
    while (got < n) {
      rig.commit();
      await Promise.race([finished, new Promise((r) => setTimeout(r, 1))]);
    }
  }
  await finished;
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function measure(make: () => Promise<Rig>, n: number, size: number): Promise<number> {
  const rates: number[] = [];
  for (let r = 0; r < 3; r++) {
    const rig = await make();
    rates.push(await stream(rig, n, size));
    await rig.send.close();
    await rig.recv.close();
    await rig.stop();
  }
  return median(rates);
}

console.log('# netrr chain, guest → network over unix sockets, one process with its peers; median of 3');
console.log(row(['case', '64 B frames/s', 'vs bridge', '1514 B frames/s', 'vs bridge']));
const dumps = Array.from({ length: 5 }, (_, i) => `dump,id=d${i},file=/dev/null`);
const cases: [string, () => Promise<Rig>][] = [
  ['bridge (a chain, no filter)', bridgeRig],
  ['chain, no filter', () => chainRig([])],
  ['chain, buffer, epochs of 1', () => chainRig(['buffer,queue=rx,limit-frames=1000000,limit-bytes=1000000000,hard-limit-bytes=1000000000'], 1)],
  ['chain, buffer, epochs of 100', () => chainRig(['buffer,queue=rx,limit-frames=1000000,limit-bytes=1000000000,hard-limit-bytes=1000000000'], 100)],
  ['chain, buffer, epochs of 10 000', () => chainRig(['buffer,queue=rx,limit-frames=1000000,limit-bytes=1000000000,hard-limit-bytes=1000000000'], 10_000)],
  ['chain, 5 dumps to /dev/null', () => chainRig(dumps)],
];
let anchor64 = 0;
let anchor1514 = 0;
try {
  // Warm-up, not counted: the first case would otherwise pay for the JIT.
  for (const make of [bridgeRig, () => chainRig(['buffer,queue=rx,limit-frames=1000000,limit-bytes=1000000000,hard-limit-bytes=1000000000'], 100)]) {
    const rig = await make();
    await stream(rig, 200_000, 64);
    await rig.send.close();
    await rig.recv.close();
    await rig.stop();
  }
  for (const [name, make] of cases) {
    const r64 = await measure(make, 300_000, 64);
    const r1514 = await measure(make, 100_000, 1514);
    if (anchor64 === 0) {
      anchor64 = r64;
      anchor1514 = r1514;
    }
    console.log(row([name, fmtRate(r64), `${((r64 / anchor64) * 100).toFixed(0)}%`, fmtRate(r1514), `${((r1514 / anchor1514) * 100).toFixed(0)}%`]));
  }

  // Release latency: 10 000 frames held in one epoch, commit, time until the last is at the network.
  const lat: number[] = [];
  for (const size of [64, 1514]) {
    for (let r = 0; r < 5; r++) {
      const rig = await chainRig(['buffer,queue=rx,limit-frames=1000000,limit-bytes=1000000000,hard-limit-bytes=1000000000']);
      const frame = new Uint8Array(size).fill(1);
      let got = 0;
      let done!: () => void;
      const finished = new Promise<void>((res) => (done = res));
      rig.recv.onFrame = () => {
        if (++got === 10_000) done();
      };
      for (let i = 0; i < 10_000; ) {
        while (i < 10_000 && rig.send.writable) {
          rig.send.send(frame, 0);
          i++;
        }
        await new Promise((res) => setImmediate(res));
      }
      // Synchronise on the buffer: every frame read and held (polling the in-process counter).
      while ((rig.held?.() ?? 0) < 10_000) await new Promise((res) => setTimeout(res, 1));
      const t0 = process.hrtime.bigint();
      rig.commit!();
      await finished;
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await rig.send.close();
      await rig.recv.close();
      await rig.stop();
    }
    console.log(row([`commit of a 10 000-frame epoch, ${size} B`, `${median(lat).toFixed(2)} ms`, 'median of 5', '', '']));
    lat.length = 0;
  }

  // The same commit with the reader in another process, a C reader that only counts bytes
  // (bench/native/count-reader.c), as a real network peer would be: commit → last frame handed
  // to the kernel, and commit → last byte at the reader. The floor beside it: the same bytes
  // written by Node at once in 64 KiB chunks to the same reader, no netrr involved.
  const reader = countReader();
  for (const size of [64, 1514]) {
    const kernel: number[] = [];
    const atReader: number[] = [];
    const floor: number[] = [];
    for (let r = 0; r < 7; r++) {
      const [k, rd] = await commitToRemoteReader(reader, size);
      kernel.push(k);
      atReader.push(rd);
      floor.push(await rawFloor(reader, 10_000 * (size + 4)));
    }
    console.log(row([`commit of a 10 000-frame epoch, ${size} B, C reader in another process`, `${median(kernel).toFixed(2)} ms to the kernel`, `${median(atReader).toFixed(2)} ms to the reader`, `floor ${median(floor).toFixed(2)} ms`, 'median of 7']));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Builds bench/native/count-reader.c once per source change. */
function countReader(): string {
  const src = new URL('../../bench/native/count-reader.c', import.meta.url).pathname;
  const bin = new URL('./native/count-reader', import.meta.url).pathname;
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(new URL('./native/', import.meta.url).pathname, { recursive: true });
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', bin, src], { stdio: 'inherit' });
  }
  return bin;
}

/** Starts the reader on `path`; resolves once connected, with a way to wait for its next "done". */
async function startReader(bin: string, path: string, want: number): Promise<{ child: ReturnType<typeof spawn>; done: () => Promise<void> }> {
  const child = spawn(bin, [path, String(want)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let waiter: (() => void) | null = null;
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    waiter?.();
  });
  const next = (word: string): Promise<void> =>
    new Promise((res) => {
      const check = (): void => {
        const at = out.indexOf(word);
        if (at >= 0) {
          out = out.slice(out.indexOf('\n', at) + 1);
          waiter = null;
          res();
        }
      };
      waiter = check;
      check();
    });
  await next('up');
  return { child, done: () => next('done') };
}

/** The same bytes written by Node at once, in 64 KiB chunks, to the C reader: ms to the last byte. */
async function rawFloor(bin: string, bytes: number): Promise<number> {
  const path = join(dir, `floor${k++}.sock`);
  const server = net.createServer();
  await new Promise<void>((res) => server.listen(path, res));
  const accepted = new Promise<net.Socket>((res) => server.once('connection', res));
  const r = await startReader(bin, path, bytes);
  const sock = await accepted;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const done = r.done();
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < bytes; sent += chunk.length) sock.write(bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent));
  await done;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  r.child.kill();
  sock.destroy();
  await new Promise<void>((res) => server.close(() => res()));
  return ms;
}

async function commitToRemoteReader(bin: string, size: number): Promise<[number, number]> {
  const N = 10_000;
  const g = join(dir, `g${k}.sock`);
  const n = join(dir, `n${k++}.sock`);
  const c = new Chain({ guest: `unix:${g},server=on`, network: `unix:${n},server=on`, filters: parseFilterList(['buffer,queue=rx,limit-frames=1000000,limit-bytes=1000000000,hard-limit-bytes=1000000000']) });
  await c.start();
  const r = await startReader(bin, n, N * (size + 4));
  const send = createEndpoint(`unix:${g}`);
  await send.start();
  await send.waitConnected(5000);
  await c.network.waitConnected(5000);
  const frame = new Uint8Array(size).fill(1);
  for (let i = 0; i < N; ) {
    while (i < N && send.writable) {
      send.send(frame, 0);
      i++;
    }
    await new Promise((res) => setImmediate(res));
  }
  const buf = c.filters[0]!;
  while ((buf.report() as { backlogFrames: number }).backlogFrames < N) await new Promise((res) => setTimeout(res, 1));
  const before = c.network.counters.txFrames;
  const atReader = r.done();
  const t0 = process.hrtime.bigint();
  const { closed } = c.command('epoch-begin', {}) as { closed: number };
  c.command('epoch-commit', { epoch: closed });
  while (c.network.counters.txFrames - before < N) await new Promise((res) => setImmediate(res));
  const tKernel = Number(process.hrtime.bigint() - t0) / 1e6;
  await atReader;
  const tReader = Number(process.hrtime.bigint() - t0) / 1e6;
  r.child.kill();
  await send.close();
  await c.stop(100);
  return [tKernel, tReader];
}

// The buffer filter alone, in memory: enqueue + release through a no-op chain context.
{
  const N = 1_000_000;
  const frame = new Uint8Array(64);
  let passed = 0;
  const ctx = { passOn: () => void passed++, requestCheckpoint: () => {}, holdGuest: () => {}, holdNetwork: () => {}, emit: () => {}, fatal: () => {} };
  const [spec] = parseFilterList(['buffer,limit-frames=2000000,limit-bytes=1000000000,hard-limit-bytes=1000000000']);
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const f = new BufferFilter(spec as never, ctx);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      f.receive('rx', frame, 0, 0);
      if ((i & 1023) === 1023) {
        const { closed } = f.commands['epoch-begin']!({}, 0) as { closed: number };
        f.commands['epoch-commit']!({ epoch: closed }, 0);
      }
    }
    times.push(Number(process.hrtime.bigint() - t0) / N);
  }
  console.log(row(['buffer filter alone (epochs of 1024)', `${median(times).toFixed(0)} ns/frame`, `${passed} passed`, '', '']));
}

// The rewriter alone, in memory, both modes: a client's segments (64 B and 1514 B frames) on a connection
// with an offset (ACK shifted in place, checksum updated), and the same after a checkpoint (offset 0:
// passed), beside a pass-through filter that decodes the frame and passes it (the anchor, same run).
{
  const { RewriterFilter } = await import('../src/engine/filters/rewriter-filter.ts');
  const { PacketView } = await import('../src/packet/packet-view.ts');
  const { clientGuestSegment: seg } = await import('../test/helpers/build-packet.ts');
  const ctx = { passOn: () => {}, requestCheckpoint: () => {}, holdGuest: () => {}, holdNetwork: () => {}, emit: () => {}, fatal: () => {} };
  const N = 500_000;
  const time = (receive: (f: Uint8Array) => void, frame: Uint8Array): number => {
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) receive(frame);
      times.push(Number(process.hrtime.bigint() - t0) / N);
    }
    return median(times);
  };
  for (const size of [64, 1514]) {
    const data = seg(true, 0x18, 1001, 3001, new Uint8Array(size - 54));
    const view = new PacketView();
    const anchor = time((f) => void view.decode(f), data);
    console.log(row([`pass-through filter (decode), ${size} B`, `${anchor.toFixed(0)} ns/frame`, '', '', '']));
    for (const mode of ['qemu', 'extended'] as const) {
      for (const phase of ['offset 2000: rewritten', 'after a checkpoint: passed']) {
        const f = new RewriterFilter({ id: 'rw', queue: 'all', status: true, vnetHdr: false, mode, tsOffset: false }, ctx);
        f.receive('tx', seg(true, 0x02, 1000, 0), 0);
        f.receive('rx', seg(false, 0x12, 5000, 1001), 0);
        f.receive('tx', seg(true, 0x10, 1001, 3001), 0);
        if (phase.startsWith('after')) f.colo('checkpoint');
        const ns = time((fr) => void f.receive('tx', fr, 0), data);
        console.log(row([`rewriter ${mode}, ${size} B, ${phase}`, `${ns.toFixed(0)} ns/frame`, `+${(ns - anchor).toFixed(0)} ns`, `${(1e3 / ns).toFixed(2)} M/s`, '']));
      }
    }
  }
}
