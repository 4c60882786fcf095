// Replay injection rate against the record rate of the same recording
// (MB/s and frames/s of world data delivered to the guest):
//  - a scripted guest over a socket: a world streams 1514-byte frames, the
//    guest acknowledges every 16th (so causal pacing has something to wait
//    for); recorded through `netrr record`, replayed by `netrr replay` to the
//    same script;
//  - a real guest (the test guest under TCG): an 8 MB HTTP download through
//    slirp, recorded, then replayed into a fresh boot; both transfers are
//    timed the same way, from log timestamps: the replay's guest side goes
//    through a second `netrr record`, whose log gives the replayed transfer's
//    span.
// Run: node dist/bench/replay.js [scripted|guest]   (needs QEMU and the test guest for `guest`)

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder, encodeRecord } from '../src/codec/qemu-framing.ts';
import { logSegments, scanSegment } from '../src/io/log-file.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from '../test/helpers/build-packet.ts';
import { recordGuest } from '../test/helpers/guest.ts';
import { Qemu, slirpWorldArgs } from '../test/helpers/qemu.ts';
import { waitFor } from '../test/helpers/raw-peer.ts';
import { NETRR_BIN, start } from '../test/helpers/run.ts';
import { row } from './bench-util.ts';

const which = process.argv[2] ?? 'all';
const dir = mkdtempSync(join(process.env.NETRR_BENCH_DIR ?? tmpdir(), 'netrr-replaybench-'));
const G = { src: '52:54:00:12:34:56', dst: '52:55:0a:00:02:02', ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
const W = { src: '52:55:0a:00:02:02', dst: '52:54:00:12:34:56', ipSrc: '10.0.2.2', ipDst: '10.0.2.15' };
const SCRIPT_FRAMES = 60_000;
const ACK_EVERY = 16;

const dataFrame = (i: number): Uint8Array => {
  const p = new Uint8Array(1472);
  p[0] = i >>> 24;
  p[1] = i >>> 16;
  p[2] = i >>> 8;
  p[3] = i;
  return buildFrame({ ...W, proto: 'udp', srcPort: 9, dstPort: 5000, payload: p });
};
const guestFrame = (i: number): Uint8Array => buildFrame({ ...G, proto: 'udp', srcPort: 5000, dstPort: 9, payload: `ack ${i}` });

/** The scripted guest: sends its request, then an ack for every ACK_EVERY data frames; resolves with the seconds from request to last frame. */
function scriptedGuest(sockPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const connect = (): void => {
      const s = net.connect(sockPath);
      s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? setTimeout(connect, 10) : reject(e)));
      s.once('connect', () => {
        let got = 0;
        const t0 = process.hrtime.bigint();
        const dec = new FrameDecoder({ vnetHdr: false }, () => {
          got++;
          if (got % ACK_EVERY === 0) s.write(encodeRecord(guestFrame(got / ACK_EVERY)));
          if (got === SCRIPT_FRAMES) {
            resolve(Number(process.hrtime.bigint() - t0) / 1e9);
            s.end();
          }
        });
        s.on('data', (c: Buffer) => dec.push(c));
        s.write(encodeRecord(guestFrame(0)));
      });
    };
    connect();
  });
}

/** The scripted world: after the guest's request, streams SCRIPT_FRAMES data frames, respecting backpressure. */
function scriptedWorld(sockPath: string): net.Server {
  const server = net.createServer((s) => {
    const dec = new FrameDecoder({ vnetHdr: false }, () => {
      if (started) return;
      started = true;
      let i = 1;
      const pump = (): void => {
        while (i <= SCRIPT_FRAMES) if (!s.write(encodeRecord(dataFrame(i++)))) return void s.once('drain', pump);
      };
      pump();
    });
    let started = false;
    s.on('data', (c: Buffer) => dec.push(c));
    s.on('error', () => {});
  });
  server.listen(sockPath);
  return server;
}

async function stopChild(c: ReturnType<typeof start>): Promise<void> {
  c.child.kill('SIGTERM');
  await waitFor(() => c.child.exitCode !== null || c.child.signalCode !== null, 20_000, 'child exit');
}

/** Span of world frames carrying payload, and their count and bytes, from a netrr log (port 1: upstream). */
async function worldSpan(log: string, port: number): Promise<{ secs: number; frames: number; bytes: number }> {
  let first = -1;
  let last = 0;
  let frames = 0;
  let bytes = 0;
  const v = new PacketView();
  for (const seg of logSegments(log)) {
    await scanSegment(seg, (r) => {
      if (r.port !== port || r.direction !== 0 || v.decode(r.payload).payloadLength === 0) return;
      if (first < 0) first = r.tsNs;
      last = r.tsNs;
      frames++;
      bytes += r.payload.length;
    });
  }
  return { secs: (last - first) / 1e9, frames, bytes };
}

function printRow(label: string, frames: number, bytes: number, secs: number): void {
  console.log(row([label, (bytes / secs / 1e6).toFixed(1), `${(frames / secs / 1e3).toFixed(1)} k`, secs.toFixed(3)]));
}

async function scripted(): Promise<void> {
  const d = join(dir, 'scripted');
  mkdirSync(d);
  const world = scriptedWorld(join(d, 'world.sock'));
  const log = join(d, 'rec.nrrlog');
  const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/guest.sock,server=on`, '--upstream', `unix:${d}/world.sock`, '--log', log, '--sync', 'none']);
  const recSecs = await scriptedGuest(join(d, 'guest.sock'));
  await stopChild(rec);
  world.close();
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${d}/replay.sock,server=on`]);
  const repSecs = await scriptedGuest(join(d, 'replay.sock'));
  await waitFor(() => rp.child.exitCode !== null, 60_000, 'replay exit');
  const ok = /replay: MATCHED/.test(rp.out());
  const bytes = SCRIPT_FRAMES * 1514;
  console.log(`scripted guest over a unix socket: ${SCRIPT_FRAMES} world frames of 1514 B, the guest answering every ${ACK_EVERY}th (causal pacing waits for it); replay ${ok ? 'MATCHED' : `did not match: ${rp.out().slice(-300)}`}`);
  console.log(row(['', 'MB/s', 'frames/s', 'seconds']));
  printRow('record (through netrr record)', SCRIPT_FRAMES, bytes, recSecs);
  printRow('replay (causal)', SCRIPT_FRAMES, bytes, repSecs);
}

async function guest(): Promise<void> {
  const d = join(dir, 'guest');
  mkdirSync(d);
  const file = randomBytes(8 * 1024 * 1024);
  const md5 = createHash('md5').update(file).digest('hex');
  const server = http.createServer((req, res) => (req.url === '/file.bin' ? res.end(file) : res.writeHead(404).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const qemu = new Qemu(slirpWorldArgs(`${d}/world.sock`));
  const log = join(d, 'rec.nrrlog');
  try {
    await qemu.waitForSockets([`${d}/world.sock`]);
    const out = await recordGuest({ log, sock: `${d}/guest.sock`, upstream: `unix:${d}/world.sock`, task: 'big-fetch', cmdline: `netrr.port=${port}`, timeoutMs: 150_000 });
    if (!out.includes(md5)) throw new Error(`recording failed: ${out}`);
  } finally {
    await qemu.stop();
    server.close();
  }
  const results: [string, { secs: number; frames: number; bytes: number }][] = [['record (slirp, netrr record)', await worldSpan(log, 1)]];
  for (const pacing of ['causal', 'recorded']) {
    // The replayed transfer is timed by a second recorder between replay and guest, exactly as the recording was.
    const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${d}/${pacing}-replay.sock,server=on`, '--pacing', pacing]);
    await waitFor(() => existsSync(`${d}/${pacing}-replay.sock`), 10_000, 'replay socket');
    const tlog = join(d, `${pacing}.nrrlog`);
    const out = await recordGuest({ log: tlog, sock: `${d}/${pacing}-guest.sock`, upstream: `unix:${d}/${pacing}-replay.sock`, task: 'big-fetch', cmdline: `netrr.port=${port}`, timeoutMs: 150_000 });
    await waitFor(() => rp.child.exitCode !== null, 30_000, 'replay exit');
    if (!out.includes(md5) || !/replay: MATCHED/.test(rp.out())) throw new Error(`replay (${pacing}) failed: ${rp.out().slice(-400)} ${out}`);
    results.push([`replay (${pacing})`, await worldSpan(tlog, 1)]);
  }
  console.log('real guest (TCG), 8 MB HTTP download through slirp; the transfer span from the first to the last world frame carrying data, from log timestamps');
  console.log(row(['', 'MB/s', 'frames/s', 'seconds']));
  for (const [label, s] of results) printRow(label, s.frames, s.bytes, s.secs);
}

try {
  if (which === 'all' || which === 'scripted') await scripted();
  if (which === 'all') console.log();
  if (which === 'all' || which === 'guest') await guest();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
