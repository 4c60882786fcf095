// Each overflow policy of the epoch buffer under a real guest's flood: the
// guest (TCG) sends 20 000 numbered 1000-byte UDP datagrams as fast as it can
// (guest/src/udp-flood.c, which retries rather than lose one inside the
// guest) through `netrr chain -f buffer,limit-frames=100,overflow=…` to a
// scripted network that counts them, while a test controller commits every
// 250 ms (and at once on a checkpoint request; backpressure: 500 frames
// every 50 ms, which the guest still outruns). drop-tail drops past the
// limit, counted; checkpoint asks for early commits and drops nothing;
// backpressure pauses the guest and drops nothing. Every frame is accounted
// for: what the chain read from the guest = released + dropped (by reason),
// and the network received exactly what was released, in order.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import { type CounterTree, counterLeaves } from '../src/engine/counter-tree.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { bootGuest, streamNic } from './helpers/guest.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-chain-flood-');
after(() => tmp.cleanup());

const COUNT = 20_000;
const UDP_PORT = 9999;

/** The datagram's number, END for an end marker, or -1 for any other frame (ICMPv6, …). Ethernet 14 + IPv4 20 + UDP 8. */
const END = -2;
function datagramIndex(f: Uint8Array): number {
  if (f.length < 50 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17 || ((f[36]! << 8) | f[37]!) !== UDP_PORT) return -1;
  const head = Buffer.from(f.subarray(42, 62)).toString('latin1');
  if (head.startsWith('#end#')) return END;
  const m = /^#(\d+)#/.exec(head);
  return m === null ? -1 : Number(m[1]);
}

async function flood(policy: 'drop-tail' | 'checkpoint' | 'backpressure', limitFrames = 100, commitEveryMs = 250): Promise<{ got: number[]; counters: Map<string, number>; checkpointRequests: number; serial: string }> {
  const d = join(tmp.path, policy);
  mkdirSync(d);
  const chain = start(process.execPath, [NETRR_BIN, 'chain', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/n.sock,server=on`, '--control', `unix:${d}/ctl.sock`,
    '-f', `buffer,id=ob,queue=rx,limit-frames=${limitFrames},overflow=${policy}`]);
  await waitFor(() => ['g', 'n', 'ctl'].every((s) => existsSync(`${d}/${s}.sock`)) || chain.child.exitCode !== null, 10_000, 'chain sockets');
  const net = createEndpoint(`unix:${d}/n.sock`);
  const got: number[] = [];
  let netFrames = 0;
  let ends = 0;
  net.onFrame = (f) => {
    netFrames++;
    const i = datagramIndex(f);
    if (i >= 0) got.push(i);
    else if (i === END) ends++;
  };
  await net.start();
  await net.waitConnected(5000);
  const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
  let checkpointRequests = 0;
  let committing = Promise.resolve();
  const commit = (): Promise<void> =>
    (committing = committing.then(async () => {
      const { closed } = (await ctl.execute('epoch-begin')) as { closed: number };
      await ctl.execute('epoch-commit', { epoch: closed });
    }));
  ctl.onEvent = (e) => {
    if (e.event === 'CHECKPOINT_REQUEST') {
      checkpointRequests++;
      void commit();
    }
  };
  let running = true;
  const controller = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, commitEveryMs));
      await commit();
    }
  })();
  const g = bootGuest('udp-flood', streamNic(`${d}/g.sock`), `netrr.port=${UDP_PORT} netrr.count=${COUNT} netrr.size=1000`);
  let serial = '';
  try {
    const t0 = Date.now();
    // The first end marker at the network: every datagram before it has left the guest and passed the buffer.
    try {
      await waitFor(() => ends > 0 || g.child.exitCode !== null, 120_000, 'an end marker through the chain');
    } catch (e) {
      // The endpoints' state too (paused, read path, holds): a stall is either netrr not reading or the guest not sending.
      const st = (await ctl.execute('query-status')) as { endpoints: unknown[] };
      throw new Error(`${(e as Error).message}: ${got.length} datagrams at the network; ${JSON.stringify(await ctl.execute('query-counters'))}; endpoints ${JSON.stringify(st.endpoints)}; guest: ${g.serial()}`);
    }
    console.log(`${policy}: ${Date.now() - t0} ms from boot to the end marker`);
    g.child.kill('SIGKILL');
    await g.done;
    serial = g.serial();
    running = false;
    await controller;
    // What the guest sent last is still held: commit until the buffer is empty and the network has it all.
    const leaves = async (): Promise<Map<string, number>> => new Map(counterLeaves((await ctl.execute('query-counters')) as CounterTree));
    let c = await leaves();
    for (let k = 0; k < 200 && (c.get('filters.ob.backlogFrames') !== 0 || netFrames !== c.get('filters.ob.released')); k++) {
      await commit();
      await new Promise((r) => setTimeout(r, 20));
      c = await leaves();
    }
    await ctl.execute('quit');
    await waitFor(() => chain.child.exitCode !== null, 15_000, 'chain exits');
    assert.equal(chain.child.exitCode, 0, chain.out());
    // The books: read from the guest = enqueued = released + dropped; the network got what was released.
    const dropped = ['overlimit', 'hardLimit', 'aborted'].reduce((n, r) => n + c.get(`filters.ob.dropped.${r}`)!, 0);
    assert.equal(c.get('guest.rxFrames'), c.get('filters.ob.enqueued'), 'every guest frame reached the buffer');
    assert.equal(c.get('filters.ob.enqueued'), c.get('filters.ob.released')! + dropped, 'enqueued = released + dropped');
    assert.equal(c.get('filters.ob.backlogFrames'), 0);
    assert.equal(netFrames, c.get('filters.ob.released'), 'the network received exactly what was released');
    assert.equal(c.get('network.txFrames'), c.get('filters.ob.released'));
    assert.ok(ends > 0, serial);
    for (let k = 1; k < got.length; k++) assert.ok(got[k]! > got[k - 1]!, `datagrams in order, none twice (${got[k - 1]} then ${got[k]})`);
    return { got, counters: c, checkpointRequests, serial };
  } finally {
    running = false;
    ctl.close();
    await net.close();
    if (g.child.exitCode === null) g.child.kill('SIGKILL');
    if (chain.child.exitCode === null) chain.child.kill('SIGKILL');
  }
}

test('overflow drop-tail under a real guest flood: drops past the limit, counted; what passes is in order, once', async () => {
  const r = await flood('drop-tail');
  assert.match(r.serial, new RegExp(`FLOOD-SENT ${COUNT} `), r.serial);
  assert.ok(r.counters.get('filters.ob.dropped.overlimit')! > 0, `the limit was hit: ${JSON.stringify([...r.counters])} ${r.got.length} ${r.serial}`);
  assert.ok(r.got.length < COUNT && r.got.length > 0, `${r.got.length} of ${COUNT} datagrams passed`);
});

test('overflow checkpoint under a real guest flood: early commits requested, nothing dropped, all 20 000 in order', async () => {
  const r = await flood('checkpoint');
  assert.match(r.serial, new RegExp(`FLOOD-SENT ${COUNT} `), r.serial);
  assert.ok(r.checkpointRequests > 0, 'the buffer asked for a commit');
  assert.equal(r.counters.get('filters.ob.dropped.overlimit'), 0);
  assert.equal(r.counters.get('filters.ob.dropped.hardLimit'), 0);
  assert.deepEqual(r.got, Array.from({ length: COUNT }, (_, i) => i));
});

test('overflow backpressure under a real guest flood: the guest is paused, nothing dropped, all 20 000 in order', async () => {
  const r = await flood('backpressure', 500, 50);
  assert.match(r.serial, new RegExp(`FLOOD-SENT ${COUNT} `), r.serial);
  assert.ok(r.counters.get('guest.readPauses')! > 0, 'reading from the guest paused');
  assert.equal(r.counters.get('filters.ob.dropped.overlimit'), 0);
  assert.deepEqual(r.got, Array.from({ length: COUNT }, (_, i) => i));
});
