import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { ControlClient } from '../src/control/control-client.ts';
import { NetrrError } from '../src/errors.ts';
import { DownDetector, LinkWatch, carrierUp, parseLinkSpec } from '../src/io/link-watch.ts';
import { Netns } from './helpers/netns.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, run, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-link-');
after(() => tmp.cleanup());

test('a flap shorter than downMs is ignored; a loss that lasts fires once', () => {
  const d = new DownDetector(300);
  assert.equal(d.sample(true, 0), false);
  assert.equal(d.sample(false, 100), false);
  assert.equal(d.sample(false, 350), false, 'down for 250 ms');
  assert.equal(d.sample(true, 360), false, 'back up: the flap is forgotten');
  assert.equal(d.sample(false, 400), false);
  assert.equal(d.sample(false, 699), false);
  assert.equal(d.sample(false, 700), true);
  assert.equal(d.sample(false, 800), false, 'once');
  assert.ok(d.fired);
});

test('property: the detector fires exactly when some run of down samples spans downMs', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 500 }), fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 200 })), { maxLength: 60 }), (downMs, samples) => {
      const d = new DownDetector(downMs);
      let t = 0;
      let since = -1;
      let expected = -1;
      let fired = -1;
      samples.forEach(([up, dt], i) => {
        t += dt;
        if (d.sample(up, t)) {
          assert.equal(fired, -1, 'at most once');
          fired = i;
        }
        since = up ? -1 : since < 0 ? t : since;
        if (expected < 0 && !up && t - since >= downMs) expected = i;
      });
      assert.equal(fired, expected);
    }),
  );
});

test('--failover-link: interface name and after-ms, coded errors for the rest', () => {
  assert.deepEqual(parseLinkSpec('eth1'), { ifname: 'eth1', downMs: 300 });
  assert.deepEqual(parseLinkSpec('colo0,after-ms=1000'), { ifname: 'colo0', downMs: 1000 });
  for (const bad of ['', 'a/b', 'averyveryverylongname', 'eth0,after=5', 'eth0,after-ms=-1']) {
    assert.throws(() => parseLinkSpec(bad), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_BAD_OPTION', bad);
  }
});

test('LinkWatch reads the carrier file; no interface or no carrier at start is refused', async () => {
  const sysfs = join(tmp.path, 'sys');
  mkdirSync(join(sysfs, 'colo0'), { recursive: true });
  const carrier = join(sysfs, 'colo0', 'carrier');
  writeFileSync(carrier, '1\n');
  assert.ok(carrierUp('colo0', sysfs));
  assert.equal(carrierUp('nosuch', sysfs), false);
  assert.throws(() => new LinkWatch('nosuch', 100, () => {}, () => Date.now(), sysfs).start(), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_BAD_OPTION');
  let lost = 0;
  const w = new LinkWatch('colo0', 100, () => lost++, () => Date.now(), sysfs);
  w.start();
  try {
    writeFileSync(carrier, '0\n');
    await waitFor(() => lost > 0, 5000, 'link lost');
    assert.equal(lost, 1);
  } finally {
    w.stop();
  }
});

test('netrr chain --failover-link: the COLO link\'s peer taken down delivers failover to every filter (redirectors off, the rewriter in failover mode)', async () => {
  const d = tmp.sub();
  const ns = await Netns.create();
  try {
    const ip = async (...args: string[]): Promise<void> => {
      const r = await run('ip', ['-n', ns.name, ...args]);
      assert.equal(r.code, 0, r.stderr);
    };
    await ip('link', 'add', 'colo0', 'type', 'veth', 'peer', 'name', 'colo1');
    await ip('link', 'set', 'colo0', 'up');
    await ip('link', 'set', 'colo1', 'up');
    const chain = ns.spawn(process.execPath, [NETRR_BIN, 'chain', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/n.sock,server=on`,
      '-f', `redirector,id=f1,queue=tx,indev=unix:${d}/mirror.sock,,server=on`, '-f', `redirector,id=f2,queue=rx,outdev=unix:${d}/sec.sock,,server=on`, '-f', 'rewriter,id=rw',
      '--failover-link', 'colo0,after-ms=200', '--control', `unix:${d}/ctl.sock`]);
    await waitFor(() => existsSync(`${d}/ctl.sock`) || chain.child.exitCode !== null, 10_000, 'chain control socket');
    assert.equal(chain.child.exitCode, null, chain.out());
    const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
    try {
      await ip('link', 'set', 'colo1', 'down');
      await waitFor(() => ctl.events.some((e) => e.event === 'COLO_FAILOVER'), 10_000, 'COLO_FAILOVER');
      const ev = ctl.events.find((e) => e.event === 'COLO_FAILOVER')!;
      assert.deepEqual(ev.data, { cause: 'link-down', link: 'colo0' });
      const filters = (await ctl.execute('query-filters')) as { id: string; status: string; failoverMode?: boolean }[];
      assert.deepEqual(filters.map((f) => [f.id, f.status]), [['f1', 'off'], ['f2', 'off'], ['rw', 'on']]);
      assert.equal(filters[2]!.failoverMode, true, 'no connection had an offset');
      const st = (await ctl.execute('query-status')) as { failoverLink: { lost: boolean } };
      assert.equal(st.failoverLink.lost, true);
    } finally {
      ctl.close();
    }
  } finally {
    await ns.destroy();
  }
});

test('netrr chain --failover-link refuses a link with no carrier before anything opens', async () => {
  const d = tmp.sub();
  const r = await run(process.execPath, [NETRR_BIN, 'chain', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/n.sock,server=on`, '--failover-link', 'nosuch0']);
  assert.equal(r.code, 64, r.stderr);
  assert.match(r.stderr, /nosuch0.*ERR_BAD_OPTION/);
  assert.equal(existsSync(`${d}/g.sock`), false);
});
