// Replay under a real TCP load: a guest downloads 8 MB over HTTP, recorded by
// `netrr record`, then replayed into fresh boots with no upstream, with causal
// and with recorded pacing. Two worlds: QEMU's slirp (no window scaling: a
// 64 KB window, so the transfer takes some 130 windows) and a Linux peer
// behind a tap in a namespace (window scaling, SACK and timestamps on). Before
// world data followed the live guest's receive window, the replayer pushed
// the whole response at once and the guest dropped all past its window: the
// download stalled after about 129 KB and the run ended DIVERGED.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import { bootGuest, replayIntoGuest, streamNic, waitTask } from './helpers/guest.ts';
import { Netns } from './helpers/netns.ts';
import { Qemu } from './helpers/qemu.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-replay-large-');
after(() => tmp.cleanup());

const FILE_BYTES = 8 * 1024 * 1024;

test('an 8 MB HTTP download through slirp replays into fresh boots, causal and recorded pacing, byte-identical', async (t) => {
  const d = join(tmp.path, 'big');
  mkdirSync(d);
  let file = randomBytes(FILE_BYTES);
  const server = http.createServer((req, res) => {
    if (req.url === '/file.bin') res.end(file);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const md5 = createHash('md5').update(file).digest('hex');
  const world = new Qemu(['-netdev', 'user,id=u', '-netdev', 'hubport,id=h0,hubid=0,netdev=u', '-netdev', `stream,id=s,server=on,addr.type=unix,addr.path=${d}/world.sock`, '-netdev', 'hubport,id=h1,hubid=0,netdev=s']);
  const log = join(d, 'rec.nrrlog');
  try {
    await world.waitForSockets([`${d}/world.sock`]);
    const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/guest.sock,server=on`, '--upstream', `unix:${d}/world.sock`, '--log', log]);
    await waitFor(() => existsSync(`${d}/guest.sock`), 10_000, 'recorder socket');
    const g = bootGuest('big-fetch', streamNic(`${d}/guest.sock`), `netrr.port=${port}`);
    const recorded = await waitTask(g, 150_000);
    assert.match(recorded, new RegExp(`HTTP-MD5 ${md5} ${FILE_BYTES}`), recorded);
    rec.child.kill('SIGTERM');
    await waitFor(() => rec.child.exitCode !== null, 10_000, 'recorder exit');
  } finally {
    await world.stop();
  }
  // The file changes after recording: replay must deliver the recorded bytes.
  file = randomBytes(FILE_BYTES);
  server.close();
  await replayBothPacings(t, d, log, port, md5);
});

test('an 8 MB download from a Linux peer behind a tap (window scaling, SACK, timestamps) replays, causal and recorded pacing', async (t) => {
  const d = join(tmp.path, 'tap');
  mkdirSync(d);
  const file = randomBytes(FILE_BYTES);
  writeFileSync(join(d, 'file.bin'), file);
  const md5 = createHash('md5').update(file).digest('hex');
  const port = 8080;
  const log = join(d, 'rec.nrrlog');
  const ns = await Netns.create();
  try {
    await ns.addTap('ntap0', '10.0.2.2/24');
    await ns.httpServer('10.0.2.2', port, join(d, 'file.bin'));
    const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/guest.sock,server=on`, '--upstream', `tap:ntap0,netns=${ns.name}`, '--log', log]);
    await waitFor(() => existsSync(`${d}/guest.sock`) || rec.child.exitCode !== null, 10_000, 'recorder socket');
    const g = bootGuest('big-fetch', streamNic(`${d}/guest.sock`), `netrr.port=${port}`);
    const recorded = await waitTask(g, 150_000);
    assert.match(recorded, new RegExp(`HTTP-MD5 ${md5} ${FILE_BYTES}`), recorded);
    rec.child.kill('SIGTERM');
    await waitFor(() => rec.child.exitCode !== null, 10_000, 'recorder exit');
  } finally {
    await ns.destroy();
  }
  await replayBothPacings(t, d, log, port, md5);
});

async function replayBothPacings(t: TestContext, d: string, log: string, port: number, md5: string): Promise<void> {
  for (const pacing of ['causal', 'recorded']) {
    const r = await replayIntoGuest({ log, sock: `${d}/${pacing}.sock`, task: 'big-fetch', cmdline: `netrr.port=${port}`, args: ['--pacing', pacing, '--timeout', '20000'], timeoutMs: 150_000 });
    assert.equal(r.code, 0, `${pacing}: ${r.out}\n${r.serial}`);
    assert.match(r.serial, new RegExp(`HTTP-MD5 ${md5} ${FILE_BYTES}`), `${pacing}: the recorded download`);
    const summary = JSON.parse(/replay: MATCHED (\{.*\})/.exec(r.out)![1]!) as { divergences: number; injected: number; injectedBytes: number; windowWaits: number; windowWaitsExpired: number; seconds: number };
    t.diagnostic(`${pacing}: ${summary.injected} frames, ${summary.injectedBytes} bytes in ${summary.seconds} s; ${summary.windowWaits} window waits, ${summary.windowWaitsExpired} expired`);
    assert.equal(summary.divergences, 0);
    assert.ok(summary.injectedBytes > FILE_BYTES, `${pacing}: ${summary.injectedBytes} bytes injected`);
    assert.equal(summary.windowWaitsExpired, 0, `${pacing}: no wait needed the deadlock guard`);
  }
}
