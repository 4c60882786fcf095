// QEMU's whole COLO network proxy replaced by netrr, with two real guests on
// two "hosts" (network namespaces) and no QEMU proxy object:
//
//   C (client LAN: br0 10.0.2.2) ── cp ── P (primary host)          ── cs ── S (secondary host)
//   P: brp ─ tapp ─ netrr chain [r0: redirector rx indev ← compare outdev,
//                                r1: redirector rx outdev → compare primary-in,
//                                m0: mirror tx outdev → S over TCP] ─ primary guest
//      netrr compare (primary-in, secondary-in over TCP from S, outdev)
//   S: brs ─ taps ─ netrr chain [f1: redirector tx indev ← P's mirror over TCP,
//                                f2: redirector rx outdev → P's compare over TCP,
//                                rw: rewriter ts-offset=on] ─ secondary guest
//   P ══ colo0/colo1 (10.10.0.0/30) ══ S: the COLO link; its loss is S's failover trigger.
//
// S's LAN port stays down while COLO runs (the client reaches the service
// through P only); at failover the cluster manager (the test) brings it up.
// The two guests boot the same image apart, so their TCP choices differ
// (ISNs, timestamps, IP ids): the rewriter shifts the secondary's sequence
// numbers and timestamps into the primary's space, and compare's extended
// mode ignores IP ids, timestamps, SACK and windows. Both serve
// guest/src/colo-serve.c (no clock in its answers).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import { ControlClient, type ControlEvent } from '../src/control/control-client.ts';
import { type GuestRun, bootGuest, streamNic } from './helpers/guest.ts';
import { Netns } from './helpers/netns.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, run, tempDir } from './helpers/run.ts';
import { coloServeData } from '../src/engine/demo-traffic.ts';

const tmp = tempDir('netrr-colo-');
after(() => tmp.cleanup());

const CLIENT_MAC = '02:00:00:00:00:02';
const GUEST = '10.0.2.15';
const DOWNLOAD_BYTES = 4 * 1024 * 1024;
/** Connections at once in the first download. */
const FLOWS = 4;

async function sh(ns: Netns | null, ...args: string[]): Promise<void> {
  const r = await run('ip', ns !== null ? ['-n', ns.name, ...args] : args);
  assert.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`);
}

interface Proc {
  child: { exitCode: number | null; kill: (s?: NodeJS.Signals) => boolean };
  out: () => string;
}

interface Rig {
  d: string;
  p: Netns;
  s: Netns;
  c: Netns;
  compare: Proc;
  pChain: Proc;
  sChain: Proc;
  cmp: ControlClient;
  sec: ControlClient;
  primary: GuestRun;
  secondary: GuestRun;
}

/** A client in C: GET path from the guests; prints PROGRESS n every 256 KiB, then DONE {bytes, md5, status}. */
function client(rig: Rig, path: string): Proc {
  const script = `const h=require('http'),c=require('crypto');const m=c.createHash('md5');let n=0,next=262144;
h.get({host:${JSON.stringify(GUEST)},port:80,path:${JSON.stringify(path)},agent:false},(r)=>{r.on('data',(b)=>{m.update(b);n+=b.length;if(n>=next){console.log('PROGRESS '+n);next+=262144}});
r.on('end',()=>console.log('DONE '+JSON.stringify({status:r.statusCode,bytes:n,md5:m.digest('hex')})))}).on('error',(e)=>{console.log('ERROR '+e.message);process.exit(1)})`;
  return rig.c.spawn(process.execPath, ['-e', script]);
}

function done(p: Proc): { status: number; bytes: number; md5: string } | null {
  const m = /DONE (\{.*\})/.exec(p.out());
  return m !== null ? (JSON.parse(m[1]!) as { status: number; bytes: number; md5: string }) : null;
}

function progress(p: Proc): number {
  let n = 0;
  for (const m of p.out().matchAll(/PROGRESS (\d+)/g)) n = Number(m[1]);
  return n;
}

async function setUp(): Promise<Rig> {
  const d = tmp.sub();
  const p = await Netns.create('colo-p');
  const s = await Netns.create('colo-s');
  const c = await Netns.create('colo-c');
  for (const ns of [p, s, c]) {
    const r = await run('ip', ['netns', 'exec', ns.name, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    assert.equal(r.code, 0, r.stderr);
  }
  // The client's LAN: a bridge with the client's address, one port toward each host.
  await sh(c, 'link', 'add', 'br0', 'type', 'bridge');
  await sh(c, 'link', 'set', 'br0', 'address', CLIENT_MAC);
  await sh(c, 'addr', 'add', '10.0.2.2/24', 'dev', 'br0');
  await sh(c, 'link', 'set', 'br0', 'up');
  for (const [host, x] of [[p, 'p'], [s, 's']] as const) {
    await sh(c, 'link', 'add', `c${x}0`, 'type', 'veth', 'peer', 'name', `c${x}1`, 'netns', host.name);
    await sh(c, 'link', 'set', `c${x}0`, 'master', 'br0');
    await sh(c, 'link', 'set', `c${x}0`, 'up');
    await sh(host, 'link', 'add', `br${x}`, 'type', 'bridge');
    await sh(host, 'link', 'set', `br${x}`, 'up');
    await sh(host, 'tuntap', 'add', 'dev', `tap${x}`, 'mode', 'tap');
    await sh(host, 'link', 'set', `tap${x}`, 'master', `br${x}`);
    await sh(host, 'link', 'set', `tap${x}`, 'up');
    await sh(host, 'link', 'set', `c${x}1`, 'master', `br${x}`);
  }
  // Only the primary host is on the client's LAN while COLO runs.
  await sh(p, 'link', 'set', 'cp1', 'up');
  // The COLO link between the hosts.
  await sh(p, 'link', 'add', 'colo0', 'type', 'veth', 'peer', 'name', 'colo1', 'netns', s.name);
  await sh(p, 'addr', 'add', '10.10.0.1/30', 'dev', 'colo0');
  await sh(s, 'addr', 'add', '10.10.0.2/30', 'dev', 'colo1');
  await sh(p, 'link', 'set', 'colo0', 'up');
  await sh(s, 'link', 'set', 'colo1', 'up');

  const compare = p.spawn(process.execPath, [NETRR_BIN, 'compare', '--mode', 'extended',
    '--primary-in', `unix:${d}/pri.sock,server=on`, '--secondary-in', 'tcp:10.10.0.1:9002,server=on', '--outdev', `unix:${d}/out.sock,server=on`,
    '--report', `${d}/divergences.jsonl`, '--control', `unix:${d}/cmp.ctl`]);
  await waitFor(() => existsSync(`${d}/cmp.ctl`) || compare.child.exitCode !== null, 10_000, 'compare');
  const sChain = s.spawn(process.execPath, [NETRR_BIN, 'chain', '--guest', `unix:${d}/s-guest.sock,server=on`, '--upstream', 'tap:taps',
    '-f', 'redirector,id=f1,queue=tx,indev=tcp:10.10.0.2:9001,,server=on',
    '-f', 'redirector,id=f2,queue=rx,outdev=tcp:10.10.0.1:9002',
    '-f', 'rewriter,id=rw,ts-offset=on',
    '--failover-link', 'colo1', '--control', `unix:${d}/s.ctl`]);
  await waitFor(() => existsSync(`${d}/s.ctl`) || sChain.child.exitCode !== null, 10_000, 'secondary chain');
  const pChain = p.spawn(process.execPath, [NETRR_BIN, 'chain', '--guest', `unix:${d}/p-guest.sock,server=on`, '--upstream', 'tap:tapp',
    '-f', `redirector,id=r0,queue=rx,indev=unix:${d}/out.sock`,
    '-f', `redirector,id=r1,queue=rx,outdev=unix:${d}/pri.sock`,
    '-f', 'mirror,id=m0,queue=tx,outdev=tcp:10.10.0.2:9001',
    '--control', `unix:${d}/p.ctl`]);
  await waitFor(() => existsSync(`${d}/p.ctl`) || pChain.child.exitCode !== null, 10_000, 'primary chain');
  for (const x of [compare, sChain, pChain]) assert.equal(x.child.exitCode, null, x.out());
  const cmp = await ControlClient.connect(`unix:${d}/cmp.ctl`);
  const sec = await ControlClient.connect(`unix:${d}/s.ctl`);
  // Every proxy connection up before the guests boot (a mirror with no peer would drop the client's frames).
  const pc = await ControlClient.connect(`unix:${d}/p.ctl`);
  try {
    const linked = async (ctl: ControlClient): Promise<boolean> => {
      const filters = (await ctl.execute('query-filters')) as { endpoints?: { connected: boolean }[] }[];
      return filters.every((f) => (f.endpoints ?? []).every((e) => e.connected));
    };
    const deadline = Date.now() + 20_000;
    while (!((await linked(pc)) && (await linked(sec)))) {
      assert.ok(Date.now() < deadline, `proxy links: ${pChain.out()} ${sChain.out()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    pc.close();
  }
  const cmdline = `ipv6.disable=1 netrr.client-mac=${CLIENT_MAC}`;
  const primary = bootGuest('colo-serve', streamNic(`${d}/p-guest.sock`), `${cmdline} netrr.role=primary`);
  const secondary = bootGuest('colo-serve', streamNic(`${d}/s-guest.sock`), `${cmdline} netrr.role=secondary`);
  await waitFor(() => [primary, secondary].every((g) => g.serial().includes('COLO-SERVING') || g.child.exitCode !== null), 90_000, 'both guests serving');
  for (const g of [primary, secondary]) assert.match(g.serial(), /COLO-SERVING/, g.serial());
  return { d, p, s, c, compare, pChain, sChain, cmp, sec, primary, secondary };
}

async function tearDown(rig: Rig): Promise<void> {
  rig.cmp.close();
  rig.sec.close();
  for (const g of [rig.primary, rig.secondary]) if (g.child.exitCode === null) g.child.kill('SIGKILL');
  await Promise.all([rig.primary.done, rig.secondary.done]);
  for (const ns of [rig.p, rig.s, rig.c]) await ns.destroy();
}

interface CompareStatus {
  counters: { primary: Record<string, number> & { in: number }; secondary: Record<string, number> & { in: number }; checkpointRequests: number };
  released: number;
  queued: { primary: number; secondary: number };
}

function requests(ctl: ControlClient): ControlEvent[] {
  return ctl.events.filter((e) => e.event === 'CHECKPOINT_REQUEST');
}

/** The COLO controller's part: every checkpoint request is answered by a checkpoint (compare flushes, the secondary's filters reset). */
function controller(rig: Rig): { checkpoints: () => number; stop: () => void } {
  let n = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || requests(rig.cmp).length <= n) return;
    busy = true;
    n = requests(rig.cmp).length;
    void (async () => {
      await rig.cmp.execute('checkpoint-done');
      await rig.sec.execute('colo-event', { event: 'checkpoint' });
    })().finally(() => (busy = false));
  }, 20);
  return { checkpoints: () => n, stop: () => clearInterval(timer) };
}

test('COLO with two real guests on two hosts, no QEMU proxy object: download, forced divergence, failover over a lost link', async (t: TestContext) => {
  const rig = await setUp();
  try {
    await t.test(`${FLOWS} HTTP downloads at once (${DOWNLOAD_BYTES >> 20} MiB in all) from the pair beside a CPU hog: the right bytes, each primary frame released once, no checkpoint`, async () => {
      const each = DOWNLOAD_BYTES / FLOWS;
      const hog = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
      try {
        const cls = Array.from({ length: FLOWS }, () => client(rig, `/data/${each}`));
        await waitFor(() => cls.every((cl) => done(cl) !== null || cl.child.exitCode !== null), 180_000, 'downloads');
        for (const cl of cls) {
          const r = done(cl);
          assert.ok(r !== null, cl.out());
          assert.equal(r.status, 200);
          assert.equal(r.bytes, each);
          assert.equal(r.md5, createHash('md5').update(coloServeData(each)).digest('hex'));
        }
      } finally {
        hog.kill('SIGKILL');
      }
      // The client's FIN and the guests' last ACKs still cross the proxy: wait for compare to drain.
      let st: CompareStatus;
      const deadline = Date.now() + 10_000;
      for (;;) {
        st = (await rig.cmp.execute('query-status')) as CompareStatus;
        if (st.queued.primary === 0 || Date.now() > deadline) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const released = st.released;
      t.diagnostic(`compare: ${st.counters.primary.in} primary, ${st.counters.secondary.in} secondary frames; released ${JSON.stringify(st.counters.primary)}`);
      assert.equal(st.counters.checkpointRequests, 0, readReport(rig));
      assert.equal(released, st.counters.primary.in, 'every primary frame released once');
      assert.ok(st.counters.primary.in > DOWNLOAD_BYTES / 1500, `${st.counters.primary.in} primary frames`);
      const rw = await rewriter(rig);
      assert.ok(rw.seqRewritten > DOWNLOAD_BYTES / 1500, `the secondary's segments were shifted into the primary's sequence space: ${JSON.stringify(rw)}`);
      assert.ok(rw.tsRewritten > 0);
    });

    await t.test('a forced divergence (/who answers the role) requests a checkpoint with its report; the checkpoint flushes the held answer and resets the rewriter', async () => {
      const ctl = controller(rig);
      try {
        const before = await rewriter(rig);
        const cl = client(rig, '/who');
        await waitFor(() => requests(rig.cmp).length > 0, 30_000, 'a checkpoint request');
        const req = requests(rig.cmp)[0]!.data as { cause: string; flow: string; primary?: { context: string }; secondary?: { context: string } };
        assert.ok(['payload', 'size'].includes(req.cause), JSON.stringify(req));
        assert.match(req.flow, /10\.0\.2\.15:80/);
        await waitFor(() => done(cl) !== null || cl.child.exitCode !== null, 30_000, 'the answer');
        const r = done(cl);
        assert.ok(r !== null, cl.out());
        assert.equal(r.status, 200);
        assert.equal(r.md5, createHash('md5').update('primary\n').digest('hex'), 'the primary answers the world');
        const st = (await rig.cmp.execute('query-status')) as CompareStatus;
        assert.ok((st.counters.primary.flushed ?? 0) > 0, `held primary output flushed: ${JSON.stringify(st.counters.primary)}`);
        const rw = await rewriter(rig);
        assert.ok(rw.checkpoints >= 1 && rw.checkpoints === ctl.checkpoints(), JSON.stringify(rw));
        assert.ok(rw.checkpoints > before.checkpoints);
        const report = readReport(rig);
        assert.match(report, /"cause":"(payload|size)"/);
      } finally {
        ctl.stop();
      }
    });

    await t.test('failover: the primary host dies mid-download and the COLO link goes down; the secondary takes over and the client\'s connection completes', async () => {
      const ctl = controller(rig);
      const cl = client(rig, `/data/${DOWNLOAD_BYTES}`);
      try {
        await waitFor(() => progress(cl) >= 1024 * 1024 || cl.child.exitCode !== null, 120_000, 'a quarter of the download');
        const rwBefore = await rewriter(rig);
        // The primary host fails: its guest, its proxy and its end of the COLO link.
        rig.primary.child.kill('SIGKILL');
        const atFailure = progress(cl);
        assert.equal(done(cl), null, 'the download is still running');
        rig.pChain.child.kill('SIGKILL');
        rig.compare.child.kill('SIGKILL');
        await sh(rig.p, 'link', 'set', 'colo0', 'down');
        await waitFor(() => rig.sec.events.some((e) => e.event === 'COLO_FAILOVER'), 10_000, 'the secondary fails over');
        assert.deepEqual(rig.sec.events.find((e) => e.event === 'COLO_FAILOVER')!.data, { cause: 'link-down', link: 'colo1' });
        // The cluster manager moves the service to the secondary's LAN port.
        await sh(rig.p, 'link', 'set', 'cp1', 'down');
        await sh(rig.s, 'link', 'set', 'cs1', 'up');
        await waitFor(() => done(cl) !== null || cl.child.exitCode !== null, 180_000, 'the download through the secondary');
        const r = done(cl);
        assert.ok(r !== null, cl.out());
        assert.equal(r.bytes, DOWNLOAD_BYTES);
        assert.equal(r.md5, createHash('md5').update(coloServeData(DOWNLOAD_BYTES)).digest('hex'), 'the same bytes, once, across the failover');
        const rw = await rewriter(rig);
        t.diagnostic(`failover after ${atFailure} bytes; rewriter: ${JSON.stringify(rw)}`);
        assert.ok(atFailure < DOWNLOAD_BYTES - 1024 * 1024, `at least 1 MiB came from the secondary alone (${atFailure} before)`);
        assert.equal(rw.failoverMode, false, 'a connection had an offset: rewriting goes on (QEMU\'s rule)');
        assert.ok(rw.seqRewritten > rwBefore.seqRewritten, 'the secondary\'s segments are still shifted after failover');
        const filters = (await rig.sec.execute('query-filters')) as { id: string; status: string }[];
        assert.deepEqual(filters.map((f) => [f.id, f.status]), [['f1', 'off'], ['f2', 'off'], ['rw', 'on']]);
      } finally {
        ctl.stop();
        if (cl.child.exitCode === null) cl.child.kill('SIGKILL');
      }
    });
  } finally {
    await tearDown(rig);
  }
});

interface RewriterReport {
  seqRewritten: number;
  ackRewritten: number;
  tsRewritten: number;
  checkpoints: number;
  failoverMode: boolean;
  connections: number;
}

async function rewriter(rig: Rig): Promise<RewriterReport> {
  const filters = (await rig.sec.execute('query-filters')) as (RewriterReport & { id: string })[];
  return filters.find((f) => f.id === 'rw')!;
}

function readReport(rig: Rig): string {
  const f = join(rig.d, 'divergences.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8') : '(no report)';
}
