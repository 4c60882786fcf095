// Tap endpoint throughput: frames through `netrr bridge` between a unix
// socket peer (this process) and a tap device in a fresh network namespace
// (needs root). Two directions:
//   peer → tap: UDP frames written by the peer, counted by a UDP socket in the namespace;
//   tap → peer: UDP datagrams sent by a socket in the namespace, counted by the peer.
// Run: node dist/bench/tap.js

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder, encodeRecord } from '../src/codec/qemu-framing.ts';
import { buildFrame } from '../test/helpers/build-packet.ts';
import { fmtRate, row } from './bench-util.ts';

const NETRR_BIN = new URL('../../bin/netrr.js', import.meta.url).pathname;
const NS = `netrr-bench-${process.pid}`;
const PEER_MAC = '52:54:00:ab:cd:ef';
const DURATION_MS = 2000;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A Node script in the namespace; prints lines to `lines`. */
function inNs(script: string, lines: string[]): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  c.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
  return c;
}

const dir = mkdtempSync(join(tmpdir(), 'netrr-tapbench-'));
const children: ChildProcess[] = [];
try {
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'tuntap', 'add', 'dev', 'ntap0', 'mode', 'tap');
  ip('-n', NS, 'addr', 'add', '10.213.0.1/24', 'dev', 'ntap0');
  ip('-n', NS, 'link', 'set', 'ntap0', 'up');
  // The peer's address resolves without ARP, so the namespace can send at once.
  ip('-n', NS, 'neigh', 'add', '10.213.0.2', 'lladdr', PEER_MAC, 'dev', 'ntap0');
  const sock = join(dir, 'peer.sock');
  const br = spawn(process.execPath, [NETRR_BIN, 'bridge', '--a', `unix:${sock},server=on`, '--b', `tap:ntap0,netns=${NS}`], { stdio: 'ignore' });
  children.push(br);
  await waitFor(() => existsSync(sock), 'bridge socket');
  await new Promise((r) => setTimeout(r, 300)); // the helper opens the tap
  const peer = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ path: sock }, () => resolve(s));
    s.once('error', reject);
  });
  let rx = 0;
  const dec = new FrameDecoder({ vnetHdr: false }, (f) => {
    if (f[12] === 8 && f[13] === 0 && f[23] === 17) rx++;
  });
  peer.on('data', (c: Buffer) => dec.push(c));

  console.log(`# tap endpoint through netrr bridge (unix peer ↔ tap in a namespace), ${DURATION_MS} ms per case`);
  console.log(row(['case', 'frames/s', 'MB/s', '', '']));
  for (const size of [64, 1514]) {
    // peer → tap: the namespace counts what its UDP socket receives.
    const lines: string[] = [];
    const counter = inNs(`const s=require('dgram').createSocket('udp4');let n=0;s.on('message',()=>n++);s.bind(9000,'10.213.0.1',()=>console.log('ready'));setInterval(()=>console.log('n '+n),100)`, lines);
    children.push(counter);
    await waitFor(() => lines.includes('ready'), 'namespace counter');
    const frame = buildFrame({ src: PEER_MAC, dst: 'ff:ff:ff:ff:ff:ff', ipSrc: '10.213.0.2', ipDst: '10.213.0.1', proto: 'udp', srcPort: 9001, dstPort: 9000, payload: new Uint8Array(size - 42) });
    const rec = encodeRecord(frame);
    const batch = Buffer.concat(Array.from({ length: 64 }, () => rec));
    const t0 = Date.now();
    const last = (): number => Number(lines.filter((l) => l.startsWith('n ')).at(-1)?.slice(2) ?? 0);
    const base = last();
    while (Date.now() - t0 < DURATION_MS) {
      if (!peer.write(batch)) await new Promise((r) => peer.once('drain', r));
      else await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 300));
    const got = last() - base;
    console.log(row([`peer → tap, ${size} B`, fmtRate(got / (DURATION_MS / 1000)), ((got * size) / (DURATION_MS / 1000) / 1e6).toFixed(0), '', '']));
    counter.kill();

    // tap → peer: the namespace sends as fast as its socket allows.
    rx = 0;
    const sender = inNs(`const s=require('dgram').createSocket('udp4');const b=Buffer.alloc(${size - 42});const end=Date.now()+${DURATION_MS};(function go(){let k=0;while(k++<64)s.send(b,9002,'10.213.0.2');if(Date.now()<end)setImmediate(go);else setTimeout(()=>process.exit(0),100)})()`, []);
    children.push(sender);
    await new Promise((r) => sender.once('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    console.log(row([`tap → peer, ${size} B`, fmtRate(rx / (DURATION_MS / 1000)), ((rx * size) / (DURATION_MS / 1000) / 1e6).toFixed(0), '', '']));
  }
  peer.destroy();
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  try {
    ip('netns', 'del', NS);
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
}
