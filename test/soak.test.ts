// A bounded soak of `netrr run` (NETRR_SOAK_MS, default 150 s): a compare
// proxy, a buffer chain and a bridge under steady load, their peers
// disconnecting and reconnecting at random, control and /metrics clients
// polling all the while. At the end the books of every instance close (every
// frame released, delivered or dropped with a reason), the control socket and
// /metrics still answer, and the daemon's RSS stays flat (its slope over the
// second half is reported; its growth is bounded).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import type { CounterTree } from '../src/engine/counter-tree.ts';
import { LEAVE_REASONS } from '../src/engine/colo-compare/compare-counters.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, start, tempDir } from './helpers/run.ts';

const SOAK_MS = Number(process.env.NETRR_SOAK_MS ?? 150_000);
/** RSS the daemon may gain between a third of the way and the end (a leak of a few hundred bytes per frame would pass this many times over). */
const RSS_GROWTH_BOUND_MB = 40;
const tmp = tempDir('netrr-soak-');
after(() => tmp.cleanup());

type Tree = CounterTree & Record<string, any>;
const sum = (t: Record<string, number>): number => Object.values(t).reduce((a, b) => a + b, 0);
const left = (t: Record<string, number>): number => LEAVE_REASONS.reduce((n, r) => n + (t[r] ?? 0), 0);

/** A client endpoint that can be dropped and dialled again. */
class Peer {
  ep: FrameEndpoint;
  reconnects = 0;
  readonly #spec: string;
  readonly #onFrame: () => void;
  constructor(spec: string, onFrame: () => void = () => {}) {
    this.#spec = spec;
    this.#onFrame = onFrame;
    this.ep = this.#make();
  }

  #make(): FrameEndpoint {
    const ep = createEndpoint(this.#spec, { name: 'soak' });
    ep.onFrame = this.#onFrame;
    return ep;
  }

  async start(): Promise<void> {
    await this.ep.start();
    await this.ep.waitConnected(10_000);
  }

  async bounce(): Promise<void> {
    const old = this.ep;
    this.ep = this.#make();
    await old.close();
    this.reconnects++;
    await this.start();
  }

  send(f: Uint8Array): void {
    if (this.ep.writable) this.ep.send(f, 0);
  }
}

function vmRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m !== null ? Number(m[1]) / 1024 : NaN;
}

/** Least-squares slope of (t ms, v) in units per minute. */
function slopePerMinute(samples: readonly [number, number][]): number {
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + s[0], 0) / n;
  const mv = samples.reduce((a, s) => a + s[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, v] of samples) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60_000;
}

test(`soak: netrr run under mixed load for ${SOAK_MS / 1000} s with peers bouncing and clients polling: the books close, memory stays flat`, async (t: TestContext) => {
  const d = tmp.sub();
  writeFileSync(join(d, 'netrr.json'), JSON.stringify({
    control: `unix:${d}/ctl.sock`,
    metrics: '127.0.0.1:0',
    instances: [
      { name: 'colo0', kind: 'compare', 'primary-in': `unix:${d}/pri.sock,server=on`, 'secondary-in': `unix:${d}/sec.sock,server=on`, outdev: `unix:${d}/out.sock,server=on`, 'compare-timeout': 500 },
      { name: 'buf0', kind: 'chain', guest: `unix:${d}/out.sock`, upstream: `unix:${d}/world.sock,server=on`, filters: [{ kind: 'buffer', id: 'b', mode: 'epochs', 'limit-frames': 20000 }] },
      { name: 'br0', kind: 'bridge', a: `unix:${d}/a.sock,server=on`, b: `unix:${d}/b.sock,server=on` },
    ],
  }));
  const proc = start(process.execPath, [NETRR_BIN, 'run', join(d, 'netrr.json')]);
  const peers: Peer[] = [];
  const timers: NodeJS.Timeout[] = [];
  let stopping = false;
  try {
    await waitFor(() => proc.out().includes('"msg":"running"') || proc.child.exitCode !== null, 15_000, 'daemon up');
    assert.equal(proc.child.exitCode, null, proc.out());
    const url = String((proc.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'live page and /metrics'))!.url);
    const pri = new Peer(`unix:${d}/pri.sock`);
    const sec = new Peer(`unix:${d}/sec.sock`);
    const world = new Peer(`unix:${d}/world.sock`);
    const a = new Peer(`unix:${d}/a.sock`);
    const b = new Peer(`unix:${d}/b.sock`);
    peers.push(pri, sec, world, a, b);
    for (const p of peers) await p.start();
    const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
    // Load: identical streams into compare over 32 flows, and a stream across the bridge (about 4000 frames/s each).
    let n = 0;
    timers.push(setInterval(() => {
      for (let k = 0; k < 40; k++, n++) {
        const f = buildFrame({ proto: 'udp', srcPort: 5000 + (n % 32), payload: `#${n}#`.padEnd(100 + (n % 900), '.') });
        pri.send(f);
        sec.send(f);
        a.send(f);
      }
    }, 10));
    // The controller: an epoch every 50 ms; a checkpoint whenever compare asks (a bounced peer leaves frames unmatched).
    timers.push(setInterval(() => {
      void (async () => {
        const begun = (await ctl.execute('epoch-begin', { instance: 'buf0' })) as { closed: number };
        await ctl.execute('epoch-commit', { instance: 'buf0', epoch: begun.closed });
      })().catch(() => {});
    }, 50));
    ctl.onEvent = (e) => {
      if (e.event === 'CHECKPOINT_REQUEST') void ctl.execute('checkpoint-done', { instance: 'colo0' }).catch(() => {});
    };
    // Bouncing peers: one at random every 700 ms.
    timers.push(setInterval(() => {
      if (stopping) return;
      const p = peers[Math.floor(Math.random() * peers.length)]!;
      void p.bounce().catch(() => {});
    }, 700));
    // Pollers: the control socket and /metrics, as fast as they answer.
    let polls = 0;
    let scrapes = 0;
    const scrapeErrors: string[] = [];
    const pollers = [
      (async () => {
        const c = await ControlClient.connect(`unix:${d}/ctl.sock`);
        while (!stopping) {
          await c.execute('query-counters');
          await c.execute('query-status', { instance: 'buf0' });
          polls++;
        }
        c.close();
      })(),
      (async () => {
        while (!stopping) {
          // A scrape that fails at the connection (CI saw one "fetch failed" in a 150 s run, the daemon
          // answering before and after) is counted and reported; a wrong answer still fails the test.
          let r: Response;
          try {
            r = await fetch(`${url}metrics`);
          } catch (e) {
            scrapeErrors.push(String((e as Error).cause ?? e));
            continue;
          }
          assert.equal(r.status, 200);
          await r.text();
          scrapes++;
          await new Promise((res) => setTimeout(res, 20));
        }
      })(),
    ];
    const pid = proc.child.pid!;
    const rss: [number, number][] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < SOAK_MS) {
      await new Promise((r) => setTimeout(r, 1000));
      rss.push([Date.now() - t0, vmRssMb(pid)]);
    }
    stopping = true;
    for (const tm of timers) clearInterval(tm);
    await Promise.all(pollers);
    // Let the last frames settle, then commit what the buffer holds.
    await new Promise((r) => setTimeout(r, 1000));
    const begun = (await ctl.execute('epoch-begin', { instance: 'buf0' })) as { closed: number };
    await ctl.execute('epoch-commit', { instance: 'buf0', epoch: begun.closed });
    await ctl.execute('checkpoint-done', { instance: 'colo0' });
    await new Promise((r) => setTimeout(r, 500));
    const all = (await ctl.execute('query-counters')) as Record<string, Tree>;
    const c = all.colo0!;
    const ch = all.buf0!;
    const br = all.br0!;
    const third = rss.filter(([ms]) => ms >= SOAK_MS / 3);
    const growth = third.at(-1)![1] - third[0]![1];
    const secondHalf = rss.filter(([ms]) => ms >= SOAK_MS / 2);
    t.diagnostic(`${n} frames offered to each input; ${peers.reduce((x, p) => x + p.reconnects, 0)} reconnects; ${polls} control polls, ${scrapes} scrapes; compare released ${left(c.primary)}, checkpoints ${c.checkpointRequests}; buffer epochs ${ch.filters.b.epochsCommitted}; bridge ${br.a.rxFrames} frames`);
    t.diagnostic(`daemon RSS: ${rss[0]![1].toFixed(1)} MB at 1 s, ${third[0]![1].toFixed(1)} → ${third.at(-1)![1].toFixed(1)} MB over the last two thirds; slope over the second half ${slopePerMinute(secondHalf).toFixed(2)} MB/min`);
    // Compare: every primary released, dropped with a reason or still queued; every release through outdev's port and endpoint.
    const eps = c.endpoints;
    assert.equal(eps['primary-in'].rxFrames, c.primary.in);
    assert.equal(c.primary.in, left(c.primary) + c.primary.queueFull + c.primary.memory + c.primary.badFragment + c.queued.primary, 'compare: primaries');
    assert.equal(c.secondary.in, left(c.secondary) + c.secondary.queueFull + c.secondary.memory + c.secondary.badFragment + c.queued.secondary, 'compare: secondaries');
    assert.equal(left(c.primary), c.outPort.sent + c.outPort.backlogFrames + sum(c.outPort.dropped), 'compare: released → outdev port');
    assert.equal(c.outPort.sent, eps.outdev.txFrames + eps.outdev.txQueuedFrames + sum(eps.outdev.txDrops), 'compare: port → outdev');
    // The buffer chain: what compare's outdev delivered was enqueued, then released, dropped or held; what it released went to the world's port.
    const buf = ch.filters.b;
    assert.equal(ch.guest.rxFrames, buf.enqueued, 'buffer: every frame from compare enqueued');
    assert.equal(buf.enqueued, buf.released + sum(buf.dropped) + buf.backlogFrames, 'buffer: enqueued');
    assert.equal(ch.deliveredToNetwork, buf.released, 'buffer: released → network');
    assert.equal(ch.deliveredToNetwork, ch.network.port.sent + ch.network.port.backlogFrames + sum(ch.network.port.dropped), 'chain: network port');
    assert.equal(ch.network.port.sent, ch.network.txFrames + ch.network.txQueuedFrames + sum(ch.network.txDrops), 'chain: port → network endpoint');
    // The bridge (README, Frame accounting).
    assert.equal(br.a.rxFrames, br.b.port.sent + br.b.port.backlogFrames + sum(br.b.port.dropped), 'bridge: a → port(b)');
    assert.equal(br.b.port.sent, br.b.txFrames + br.b.txQueuedFrames + sum(br.b.txDrops), 'bridge: port(b) → b');
    assert.ok(c.primary.in > 10_000 && br.a.rxFrames > 10_000, 'load went through');
    assert.ok(polls > 50 && scrapes > 50, `the control socket and /metrics answered all along (${polls}, ${scrapes})`);
    if (scrapeErrors.length > 0) t.diagnostic(`${scrapeErrors.length} scrapes failed at the connection: ${scrapeErrors.slice(0, 3).join('; ')}`);
    assert.ok(scrapeErrors.length * 1000 <= scrapes, `at most one scrape in 1000 fails at the connection (${scrapeErrors.length} of ${scrapes})`);
    assert.ok(growth < RSS_GROWTH_BOUND_MB, `RSS grew ${growth.toFixed(1)} MB over the last two thirds`);
    assert.deepEqual(((await ctl.execute('query-instances')) as unknown[]).length, 3);
    assert.equal((await fetch(`${url}metrics`)).status, 200);
    ctl.close();
    proc.child.kill('SIGTERM');
    assert.equal(await new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code))), 0, proc.out().slice(-2000));
  } finally {
    stopping = true;
    for (const tm of timers) clearInterval(tm);
    for (const p of peers) await p.ep.close();
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  }
});
