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
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import { spawn } from 'node:child_process';
import { recordGuest, replayIntoGuestTwice } from './helpers/guest.ts';
import { Netns } from './helpers/netns.ts';
import { Qemu, slirpWorldArgs } from './helpers/qemu.ts';
import { run, tempDir } from './helpers/run.ts';
import { logSegments, scanSegment } from '../src/io/log-file.ts';
import { PacketView } from '../src/packet/packet-view.ts';

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
  const world = new Qemu(slirpWorldArgs(`${d}/world.sock`));
  const log = join(d, 'rec.nrrlog');
  try {
    await world.waitForSockets([`${d}/world.sock`]);
    await recordBigFetch(d, `unix:${d}/world.sock`, log, `netrr.port=${port}`, md5);
  } finally {
    await world.stop();
  }
  // The file changes after recording: replay must deliver the recorded bytes.
  file = randomBytes(FILE_BYTES);
  server.close();
  await replayBothPacings(t, d, log, port, md5);
});

test('an 8 MB download from a Linux peer behind a tap (window scaling, SACK, timestamps) replays, causal and recorded pacing', async (t) => {
  const { d, md5, log } = servedFile('tap');
  const port = 8080;
  const ns = await Netns.create();
  try {
    await ns.addTap('ntap0', '10.0.2.2/24');
    await ns.httpServer('10.0.2.2', port, join(d, 'file.bin'));
    await recordBigFetch(d, `tap:ntap0,netns=${ns.name}`, log, `netrr.port=${port}`, md5);
  } finally {
    await ns.destroy();
  }
  await replayBothPacings(t, d, log, port, md5);
});

test('SACK and delayed ACKs: every 25th of a routed peer\'s packets dropped on the way to the guest, recorded, then replayed beside a CPU hog', async (t) => {
  const { d, md5, log } = servedFile('sack');
  const port = 8080;
  // The server sits one hop away (its own namespace behind a veth), so that a drop on the
  // router is a real loss: a drop on the sending host is reported to the socket, which
  // sends again at once and leaves no hole for the guest to SACK.
  const router = await Netns.create();
  const far = await Netns.create();
  const sh = async (args: string[]): Promise<void> => {
    const r = await run(args[0]!, args.slice(1));
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  };
  try {
    await router.addTap('ntap0', '10.0.2.2/24');
    await sh(['ip', '-n', router.name, 'link', 'add', 'rtr0', 'type', 'veth', 'peer', 'name', 'far0', 'netns', far.name]);
    await sh(['ip', '-n', router.name, 'addr', 'add', '10.9.0.1/30', 'dev', 'rtr0']);
    await sh(['ip', '-n', router.name, 'link', 'set', 'rtr0', 'up']);
    await sh(['ip', 'netns', 'exec', router.name, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await sh(['ip', '-n', far.name, 'addr', 'add', '10.9.0.2/30', 'dev', 'far0']);
    await sh(['ip', '-n', far.name, 'link', 'set', 'far0', 'up']);
    await sh(['ip', '-n', far.name, 'link', 'set', 'lo', 'up']);
    await sh(['ip', '-n', far.name, 'route', 'add', 'default', 'via', '10.9.0.1']);
    await sh(['ip', 'netns', 'exec', router.name, 'nft', 'add', 'table', 'inet', 'lossy']);
    await sh(['ip', 'netns', 'exec', router.name, 'nft', 'add', 'chain', 'inet', 'lossy', 'relay', '{ type filter hook forward priority 0; }']);
    await sh(['ip', 'netns', 'exec', router.name, 'nft', 'add', 'rule', 'inet', 'lossy', 'relay', 'tcp', 'sport', String(port), 'numgen', 'inc', 'mod', '25', '==', '3', 'counter', 'drop']);
    await far.httpServer('10.9.0.2', port, join(d, 'file.bin'));
    // A key=value on the kernel command line reaches init's environment.
    await recordBigFetch(d, `tap:ntap0,netns=${router.name}`, log, `netrr.port=${port} NETRR_SERVER=10.9.0.2`, md5);
    const rules = (await run('ip', ['netns', 'exec', router.name, 'nft', 'list', 'ruleset'])).stdout;
    t.diagnostic(`router drops: ${/counter (packets \d+ bytes \d+)/.exec(rules)?.[1] ?? '?'}`);
  } finally {
    await router.destroy();
    await far.destroy();
  }
  let sacks = 0;
  const v = new PacketView();
  for (const seg of logSegments(log)) await scanSegment(seg, (r) => void (r.port === 0 && v.decode(r.payload).tcpSackBlocks > 0 && sacks++));
  assert.ok(sacks > 10, `the recorded guest sent ${sacks} ACKs with SACK blocks`);
  t.diagnostic(`recorded guest ACKs with SACK blocks: ${sacks}`);
  const hogs = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  try {
    await replayBothPacings(t, d, log, port, md5, 'NETRR_SERVER=10.9.0.2');
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
  }
});

/** A test directory holding file.bin (FILE_BYTES of random bytes) for a server to serve, its MD5, and where the log goes. */
function servedFile(name: string): { d: string; md5: string; log: string } {
  const d = join(tmp.path, name);
  mkdirSync(d);
  const file = randomBytes(FILE_BYTES);
  writeFileSync(join(d, 'file.bin'), file);
  return { d, md5: createHash('md5').update(file).digest('hex'), log: join(d, 'rec.nrrlog') };
}

/** Records the big-fetch task through `netrr record` with this upstream; the guest must get the file whole. */
async function recordBigFetch(d: string, upstream: string, log: string, cmdline: string, md5: string): Promise<void> {
  const recorded = await recordGuest({ log, sock: `${d}/guest.sock`, upstream, task: 'big-fetch', cmdline, timeoutMs: 150_000 });
  assert.match(recorded, new RegExp(`HTTP-MD5 ${md5} ${FILE_BYTES}`), recorded);
}

async function replayBothPacings(t: TestContext, d: string, log: string, port: number, md5: string, cmdline = ''): Promise<void> {
  for (const pacing of ['causal', 'recorded']) {
    const opts = { log, sock: `${d}/${pacing}.sock`, task: 'big-fetch', cmdline: `netrr.port=${port} ${cmdline}`, args: ['--pacing', pacing, '--timeout', '20000'], timeoutMs: 150_000 };
    let r = await replayIntoGuestTwice((l) => t.diagnostic(l), pacing, opts);
    // A known intermittent stall (README, Tests): the live guest's window stays short of the next world
    // segment until the deadlock guard ends the wait. Shown, then a second boot, which must need no guard.
    const expired = /"windowWaitsExpired":(\d+)/.exec(r.out)?.[1];
    if (r.code === 0 && expired !== undefined && expired !== '0') {
      t.diagnostic(`INTERMITTENT: ${pacing} replay needed the deadlock guard ${expired} times on the first boot (${/"firstWindowExpiry":\{[^}]*\}/.exec(r.out)?.[0] ?? ''}); replaying into a second one`);
      r = await replayIntoGuestTwice((l) => t.diagnostic(l), pacing, { ...opts, sock: `${opts.sock}.3` });
    }
    assert.equal(r.code, 0, `${pacing}: ${r.out}\n${r.serial}`);
    assert.match(r.serial, new RegExp(`HTTP-MD5 ${md5} ${FILE_BYTES}`), `${pacing}: the recorded download`);
    const summary = JSON.parse(/replay: MATCHED (\{.*\})/.exec(r.out)![1]!) as { divergences: number; injected: number; injectedBytes: number; windowWaits: number; windowWaitsExpired: number; worldResent: number; tsvalRaised: number; seconds: number };
    t.diagnostic(`${pacing}: ${summary.injected} frames, ${summary.injectedBytes} bytes in ${summary.seconds} s; ${summary.windowWaits} window waits, ${summary.windowWaitsExpired} expired; ${summary.worldResent} segments sent again, ${summary.tsvalRaised} TSvals raised; guest ${/TCP-EXT.*/.exec(r.serial)?.[0] ?? ''}`);
    assert.equal(summary.divergences, 0);
    assert.ok(summary.injectedBytes > FILE_BYTES, `${pacing}: ${summary.injectedBytes} bytes injected`);
    assert.equal(summary.windowWaitsExpired, 0, `${pacing}: no wait needed the deadlock guard`);
  }
}
