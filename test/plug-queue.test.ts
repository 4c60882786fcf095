// sch_plug parity: this kernel has no sch_plug, so the engine is checked
// against a line-by-line transcription of net/sched/sch_plug.c kept here
// (plug_enqueue, plug_dequeue, plug_change), driven by random sequences.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PlugQueue } from '../src/engine/filters/plug-queue.ts';

/** struct plug_sched_data and its three functions, as the kernel has them; __qdisc_run dequeues until NULL. */
class KernelPlug {
  q = { limit: 0, unplug_indefinite: false, pkts_current_epoch: 0, pkts_last_epoch: 0, pkts_to_release: 0, throttled: true };
  queue: { id: number; len: number }[] = [];
  backlog = 0;
  out: number[] = [];
  drops: number[] = [];
  constructor(limit: number) {
    this.q.limit = limit;
  }
  plug_enqueue(skb: { id: number; len: number }): void {
    const q = this.q;
    if (this.backlog + skb.len <= q.limit) {
      if (!q.unplug_indefinite) q.pkts_current_epoch++;
      this.queue.push(skb);
      this.backlog += skb.len;
    } else this.drops.push(skb.id);
    this.qdisc_run();
  }
  plug_dequeue(): { id: number; len: number } | null {
    const q = this.q;
    if (q.throttled) return null;
    if (!q.unplug_indefinite) {
      if (!q.pkts_to_release) {
        q.throttled = true;
        return null;
      }
      q.pkts_to_release--;
    }
    const skb = this.queue.shift() ?? null;
    if (skb !== null) this.backlog -= skb.len;
    return skb;
  }
  qdisc_run(): void {
    for (let skb = this.plug_dequeue(); skb !== null; skb = this.plug_dequeue()) this.out.push(skb.id);
  }
  plug_change(action: 'buffer' | 'release-one' | 'release-indefinite' | 'limit', limit = 0): void {
    const q = this.q;
    switch (action) {
      case 'buffer':
        q.pkts_last_epoch = q.pkts_current_epoch;
        q.pkts_current_epoch = 0;
        if (q.unplug_indefinite) q.throttled = true;
        q.unplug_indefinite = false;
        break;
      case 'release-one':
        q.pkts_to_release += q.pkts_last_epoch;
        q.pkts_last_epoch = 0;
        q.throttled = false;
        this.qdisc_run(); // netif_schedule_queue
        break;
      case 'release-indefinite':
        q.unplug_indefinite = true;
        q.pkts_to_release = 0;
        q.pkts_last_epoch = 0;
        q.pkts_current_epoch = 0;
        q.throttled = false;
        this.qdisc_run();
        break;
      case 'limit':
        q.limit = limit;
        break;
    }
  }
}

type Step = { t: 'pkt'; len: number } | { t: 'buffer' } | { t: 'release-one' } | { t: 'release-indefinite' } | { t: 'limit'; bytes: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 1514 }).map((len) => ({ t: 'pkt' as const, len })) },
  { weight: 2, arbitrary: fc.constant({ t: 'buffer' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'release-one' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'release-indefinite' as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 20_000 }).map((bytes) => ({ t: 'limit' as const, bytes })) },
);

test('property: PlugQueue releases, drops and counts exactly as the kernel transcription', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 30_000 }), fc.array(step, { maxLength: 300 }), (limit, steps) => {
      const k = new KernelPlug(limit);
      const out: number[] = [];
      const p = new PlugQueue((f) => out.push(f[0]! | (f[1]! << 8)), limit);
      let id = 0;
      let drops = 0;
      for (const s of steps) {
        if (s.t === 'pkt') {
          const f = new Uint8Array(s.len + 2);
          f[0] = id & 0xff;
          f[1] = id >> 8;
          k.plug_enqueue({ id, len: f.length });
          if (!p.enqueue(f)) drops++;
          id++;
        } else if (s.t === 'limit') {
          k.plug_change('limit', s.bytes);
          p.setLimit(s.bytes);
        } else {
          k.plug_change(s.t);
          if (s.t === 'buffer') p.buffer();
          else if (s.t === 'release-one') p.releaseOne();
          else p.releaseIndefinite();
        }
        assert.equal(p.throttled, k.q.throttled);
        assert.equal(p.pktsToRelease, k.q.pkts_to_release);
        assert.equal(p.pktsLastEpoch, k.q.pkts_last_epoch);
        assert.equal(p.pktsCurrentEpoch, k.q.pkts_current_epoch);
        assert.equal(p.backlogBytes, k.backlog);
      }
      assert.deepEqual(out, k.out, 'release order');
      assert.equal(drops, k.drops.length);
      assert.equal(p.counters.overlimits, k.drops.length);
      assert.equal(p.counters.released, k.out.length);
      assert.equal(p.backlog, k.queue.length);
    }),
    { numRuns: 500 },
  );
});

test('the kernel quirks, by hand: a second BUFFER delays an epoch; indefinite-mode packets skew the counts', () => {
  const out: number[] = [];
  const p = new PlugQueue((f) => out.push(f[0]!));
  const pkt = (n: number): boolean => p.enqueue(Uint8Array.of(n));
  pkt(1);
  pkt(2);
  assert.deepEqual(out, [], 'starts plugged');
  p.buffer(); // epoch A = {1,2}
  pkt(3);
  p.buffer(); // a second BUFFER before RELEASE_ONE: last = {3}, A's count is lost
  p.releaseOne();
  assert.deepEqual(out, [1], 'releases one packet (the count of the last epoch), from the head: epoch A one epoch late');
  p.releaseIndefinite();
  assert.deepEqual(out, [1, 2, 3]);
  pkt(4); // passes straight through, uncounted
  assert.deepEqual(out, [1, 2, 3, 4]);
  p.buffer();
  pkt(5);
  p.buffer();
  p.releaseOne();
  assert.deepEqual(out, [1, 2, 3, 4, 5]);
});
