import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type CheckpointRequest, CompareEngine, type CompareMode, compareConfig } from '../src/engine/colo-compare/compare-engine.ts';
import { TCP_ACK, TCP_PSH, TCP_SYN } from '../src/packet/l4.ts';
import { buildFrame } from './helpers/build-packet.ts';

function harness(mode: CompareMode, extra: Parameters<typeof compareConfig>[0] = {}) {
  const out: Uint8Array[] = [];
  const reqs: CheckpointRequest[] = [];
  const e = new CompareEngine(compareConfig({ mode, ...extra }), {
    release: (f) => out.push(Uint8Array.from(f)),
    checkpoint: (r) => reqs.push(r),
  });
  return { e, out, reqs };
}

const udp = (payload: string, extra = {}) => buildFrame({ proto: 'udp', payload, ...extra });
const tcp = (seq: number, payload: string, extra = {}) => buildFrame({ proto: 'tcp', seq, ack: 500, tcpFlags: TCP_ACK | TCP_PSH, payload, ...extra });
const text = (f: Uint8Array): string => {
  // payload after Ethernet+IPv4(20)+UDP(8) or TCP(20)
  const proto = f[23];
  return Buffer.from(f.subarray(14 + 20 + (proto === 6 ? 20 : 8))).toString();
};

for (const mode of ['qemu', 'extended'] as const) {
  test(`${mode}: identical UDP is released once with the primary's bytes; secondary first works too`, () => {
    const { e, out, reqs } = harness(mode);
    const p = udp('hello', { ipId: 1, ttl: 64 });
    const s = udp('hello', { ipId: 99, ttl: 63 }); // UDP compare starts at L4: IP header differences are fine
    e.primaryIn(p, 0, 0);
    assert.equal(out.length, 0);
    e.secondaryIn(s, 0, 1);
    assert.deepEqual(out, [p]);
    e.secondaryIn(udp('two'), 0, 2);
    e.primaryIn(udp('two'), 0, 3);
    assert.equal(out.length, 2);
    assert.equal(reqs.length, 0);
    assert.equal(e.queuedPrimary + e.queuedSecondary, 0);
  });

  test(`${mode}: different payload holds the primary and requests a checkpoint; done releases it`, () => {
    const { e, out, reqs } = harness(mode);
    e.primaryIn(udp('AAAA'), 0, 0);
    e.secondaryIn(udp('AAAB'), 0, 0);
    assert.equal(out.length, 0);
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0]!.cause, 'payload');
    // Compare starts at the UDP header: the checksum (bytes 6-7) differs before the payload does.
    assert.ok([6, 7].includes(reqs[0]!.divergence.firstDiffOffset!));
    e.primaryIn(udp('CC'), 0, 1);
    e.secondaryIn(udp('DDD'), 0, 1);
    assert.equal(reqs.length, 1, 'coalesced until done');
    assert.ok(e.counters.coalesced >= 1);
    e.checkpointDone();
    assert.deepEqual(out.map(text), ['AAAA', 'CC'], 'released in arrival order');
    assert.equal(e.counters.secondary.flushed, 2);
    e.primaryIn(udp('x'), 0, 2);
    e.secondaryIn(udp('y'), 0, 2);
    assert.equal(reqs.length, 2, 'a new epoch may request again');
  });

  test(`${mode}: UDP is compared and released FIFO under a lagging secondary (QEMU: LIFO + spurious checkpoints)`, () => {
    const { e, out, reqs } = harness(mode);
    for (let i = 0; i < 5; i++) e.primaryIn(udp(`m${i}`), 0, 0);
    for (let i = 0; i < 5; i++) e.secondaryIn(udp(`m${i}`), 0, 0);
    assert.deepEqual(out.map(text), ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.equal(reqs.length, 0);
  });

  test(`${mode}: TCP compared in sequence space across different segmentation`, () => {
    const { e, out, reqs } = harness(mode);
    // 8 bytes on the primary vs 4 + 4 on the secondary.
    e.primaryIn(tcp(1000, 'abcdefgh'), 0, 0);
    e.secondaryIn(tcp(1000, 'abcd'), 0, 0);
    assert.equal(out.length, 0);
    e.secondaryIn(tcp(1004, 'efgh'), 0, 0);
    assert.equal(out.length, 1);
    // 3 + 7 on the primary vs 10 on the secondary.
    e.primaryIn(tcp(1008, 'ijk'), 0, 0);
    e.primaryIn(tcp(1011, 'lmnopqr'), 0, 0);
    e.secondaryIn(tcp(1008, 'ijklmnopqr'), 0, 0);
    assert.deepEqual(out.map(text), ['abcdefgh', 'ijk', 'lmnopqr']);
    assert.equal(reqs.length, 0);
  });

  test(`${mode}: TCP out of order is released in sequence order; pure ACK waits for any secondary`, () => {
    const { e, out } = harness(mode);
    e.primaryIn(tcp(1008, 'cccc'), 0, 0);
    e.primaryIn(tcp(1004, 'bbbb'), 0, 0);
    e.primaryIn(tcp(1000, 'aaaa'), 0, 0);
    for (const [seq, p] of [[1000, 'aaaa'], [1004, 'bbbb'], [1008, 'cccc']] as const) e.secondaryIn(tcp(seq, p), 0, 0);
    assert.deepEqual(out.map(text), ['aaaa', 'bbbb', 'cccc']);
    const ack = buildFrame({ proto: 'tcp', seq: 1012, ack: 600, tcpFlags: TCP_ACK });
    e.primaryIn(ack, 0, 1);
    assert.equal(out.length, 3, 'held until the secondary says anything on this connection');
    e.secondaryIn(buildFrame({ proto: 'tcp', seq: 1012, ack: 600, tcpFlags: TCP_ACK }), 0, 1);
    assert.equal(out.length, 4);
    const syn = buildFrame({ proto: 'tcp', srcPort: 7, seq: 1, tcpFlags: TCP_SYN });
    e.primaryIn(syn, 0, 2);
    e.secondaryIn(buildFrame({ proto: 'tcp', srcPort: 7, seq: 99, tcpFlags: TCP_SYN }), 0, 2);
    assert.deepEqual(out[4], syn);
  });

  test(`${mode}: same TCP data with a different ACK is released (payload-only compare)`, () => {
    const { e, out, reqs } = harness(mode);
    e.primaryIn(tcp(1000, 'data', { ack: 400 }), 0, 0);
    e.secondaryIn(tcp(1000, 'data', { ack: 500 }), 0, 0);
    assert.equal(out.length, 1);
    assert.equal(reqs.length, 0);
  });

  test(`${mode}: silent secondary → timeout request from the scan, repeated while not done`, () => {
    const { e, reqs } = harness(mode, { compareTimeoutMs: 3000 });
    e.primaryIn(udp('lonely'), 0, 1000);
    e.scan(2000);
    e.scan(4000);
    assert.equal(reqs.length, 0);
    e.scan(4001);
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0]!.cause, 'timeout');
    e.scan(5000);
    assert.equal(reqs.length, 1);
    e.scan(7001);
    assert.equal(reqs.length, 2);
    assert.equal(reqs[1]!.attempt, 2);
    e.checkpointDone();
    assert.equal(e.queuedPrimary, 0);
  });

  test(`${mode}: failover flushes and then passes primaries through`, () => {
    const { e, out } = harness(mode);
    e.primaryIn(udp('a'), 0, 0);
    e.failover();
    e.primaryIn(udp('b'), 0, 0);
    e.secondaryIn(udp('b'), 0, 0);
    assert.deepEqual(out.map(text), ['a', 'b']);
    assert.equal(e.counters.secondary.failover, 1);
  });
}

test('qemu: non-IPv4, VLAN and runt primaries pass uncompared; such secondaries are dropped', () => {
  const { e, out } = harness('qemu');
  const arp = new Uint8Array(42);
  arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
  const v6 = buildFrame({ ip: 6, proto: 'udp', payload: 'six' });
  const vlan = buildFrame({ vlans: [5], proto: 'udp', payload: 'tagged' });
  const runt = new Uint8Array(17);
  for (const f of [arp, v6, vlan, runt]) e.primaryIn(f, 0, 0);
  assert.deepEqual(out, [arp, v6, vlan, runt]);
  for (const f of [arp, v6, vlan, runt]) e.secondaryIn(f, 0, 0);
  assert.equal(e.counters.secondary.unsupported, 4);
  assert.equal(e.counters.primary.unsupported, 4);
});

test('extended: IPv6, VLAN and ARP are compared rather than waved through', () => {
  const { e, out, reqs } = harness('extended');
  const v6 = buildFrame({ ip: 6, proto: 'udp', payload: 'six' });
  const vlan = buildFrame({ vlans: [5], proto: 'udp', payload: 'tagged' });
  const arp = new Uint8Array(60);
  arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
  for (const f of [v6, vlan, arp]) e.primaryIn(f, 0, 0);
  assert.equal(out.length, 0);
  for (const f of [v6, vlan, arp]) e.secondaryIn(f, 0, 0);
  assert.deepEqual(out, [v6, vlan, arp]);
  e.primaryIn(buildFrame({ ip: 6, proto: 'tcp', seq: 10, payload: 'abc' }), 0, 0);
  e.secondaryIn(buildFrame({ ip: 6, proto: 'tcp', seq: 10, payload: 'abd' }), 0, 0);
  assert.equal(reqs.length, 1);
  assert.equal(reqs[0]!.cause, 'payload');
  assert.match(reqs[0]!.divergence.flow, /^tcp \[fd00:0:0:0:0:0:0:1\]:1234 > \[fd00:0:0:0:0:0:0:2\]:80$/);
});

test('qemu: max_queue_size=4 holds 5 packets (the check is <=), then drops with a count', () => {
  const { e, reqs } = harness('qemu', { maxQueueSize: 4 });
  for (let i = 0; i < 8; i++) e.primaryIn(udp(`q${i}`), 0, 0);
  assert.equal(e.queuedPrimary, 5);
  assert.equal(e.counters.primary.queueFull, 3);
  assert.equal(reqs.length, 0, 'QEMU only traces the drop');
  const x = harness('extended', { maxQueueSize: 4 });
  for (let i = 0; i < 8; i++) x.e.primaryIn(udp(`q${i}`), 0, 0);
  assert.equal(x.e.queuedPrimary, 4);
  assert.equal(x.reqs[0]!.cause, 'queue-overflow');
});

test('connection table: bounded LRU; a busy evicted connection releases, counts and asks for a checkpoint', () => {
  const { e, out, reqs } = harness('qemu', { maxConnections: 2 });
  e.primaryIn(udp('p1', { srcPort: 1 }), 0, 0);
  e.primaryIn(udp('p2', { srcPort: 2 }), 0, 0);
  e.primaryIn(udp('p3', { srcPort: 3 }), 0, 0);
  assert.equal(e.table.size, 2);
  assert.equal(e.counters.primary.evicted, 1);
  assert.deepEqual(out.map(text), ['p1']);
  assert.equal(reqs[0]!.cause, 'table-full');
  // Idle connections are evicted before busy ones.
  const h = harness('qemu', { maxConnections: 2 });
  h.e.primaryIn(udp('a', { srcPort: 1 }), 0, 0);
  h.e.secondaryIn(udp('a', { srcPort: 1 }), 0, 0); // flow 1 now idle
  h.e.primaryIn(udp('b', { srcPort: 2 }), 0, 0); // flow 2 busy
  h.e.primaryIn(udp('c', { srcPort: 3 }), 0, 0); // evicts idle flow 1
  assert.equal(h.e.counters.primary.evicted, 0);
  assert.equal(h.reqs.length, 0);
});

test('memory bound: queued bytes never exceed maxQueuedBytes', () => {
  const { e, reqs } = harness('qemu', { maxQueuedBytes: 1000 });
  for (let i = 0; i < 50; i++) e.primaryIn(udp('x'.repeat(100), { srcPort: i }), 0, 0);
  assert.ok(e.queuedBytes <= 1000);
  assert.ok(e.counters.primary.memory > 0);
  assert.equal(reqs[0]!.cause, 'memory');
});

test('property: accounting invariant under random schedules — every primary released once or dropped with a reason', () => {
  type Op = { t: 'p' | 's'; flow: number; msg: number; proto: 'udp' | 'tcp' | 'icmp' } | { t: 'pf' | 'sf'; flow: number; msg: number; which: number } | { t: 'scan' | 'done' | 'failover' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ t: fc.constantFrom<'pf' | 'sf'>('pf', 'sf'), flow: fc.nat(3), msg: fc.nat(3), which: fc.nat(2) }) },
    { weight: 10, arbitrary: fc.record({ t: fc.constantFrom<'p' | 's'>('p', 's'), flow: fc.nat(5), msg: fc.nat(6), proto: fc.constantFrom<'udp' | 'tcp' | 'icmp'>('udp', 'tcp', 'icmp') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constantFrom<'scan' | 'done' | 'failover'>('scan', 'done', 'done', 'failover') }) },
  );
  fc.assert(
    fc.property(fc.constantFrom<CompareMode>('qemu', 'extended'), fc.array(opArb, { maxLength: 120 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 2, max: 8 }), (mode, ops, maxQueueSize, maxConnections) => {
      const released: Uint8Array[] = [];
      const e = new CompareEngine(compareConfig({ mode, maxQueueSize, maxConnections, maxQueuedBytes: 4000, compareTimeoutMs: 50 }), {
        release: (f) => released.push(Uint8Array.from(f)),
        checkpoint: () => {},
      });
      const primaries = new Set<Uint8Array>();
      let now = 0;
      const seqs = new Map<string, number>();
      for (const op of ops) {
        now += 10;
        if (op.t === 'scan') e.scan(now);
        else if (op.t === 'done') e.checkpointDone();
        else if (op.t === 'failover') e.failover();
        else if (op.t === 'pf' || op.t === 'sf') {
          // One of two fragments of a 64-byte UDP datagram (cut at 32); which=2 overlaps fragment 0.
          const whole = buildFrame({ proto: 'udp', srcPort: 300 + op.flow, ipId: op.flow * 16 + op.msg, payload: `frag${op.msg}`.padEnd(64, '.') });
          const ihl = 20;
          const cut = op.which === 1 ? [32, 72] : op.which === 0 ? [0, 32] : [16, 40];
          const part = whole.subarray(14 + ihl + cut[0]!, Math.min(whole.length, 14 + ihl + cut[1]!));
          const f = new Uint8Array(14 + ihl + part.length);
          f.set(whole.subarray(0, 14 + ihl));
          f.set(part, 14 + ihl);
          f[16] = (ihl + part.length) >> 8;
          f[17] = (ihl + part.length) & 0xff;
          const fo = cut[0]! / 8 | (op.which === 1 ? 0 : 0x2000);
          f[20] = fo >> 8;
          f[21] = fo & 0xff;
          if (op.t === 'pf') {
            primaries.add(f);
            e.primaryIn(f, 0, now);
          } else e.secondaryIn(f, 0, now);
        } else if ('proto' in op) {
          const payload = `m${op.msg}`;
          const k = `${op.t}${op.flow}`;
          const seq = seqs.get(k) ?? 1000;
          seqs.set(k, seq + payload.length);
          const f = buildFrame({ proto: op.proto, srcPort: 100 + op.flow, icmpId: op.flow, seq, payload });
          if (op.t === 'p') {
            primaries.add(f);
            e.primaryIn(f, 0, now);
          } else e.secondaryIn(f, 0, now);
        }
        const c = e.counters;
        const held = e.heldFragments;
        assert.equal(c.primary.in, c.released() + c.primary.queueFull + c.primary.memory + c.primary.badFragment + e.queuedPrimary + held.primary);
        assert.equal(c.secondary.in, c.secondary.left() + c.secondary.queueFull + c.secondary.memory + c.secondary.badFragment + e.queuedSecondary + held.secondary);
        assert.equal(released.length, c.released());
        assert.ok(e.queuedBytes <= 4000);
        assert.ok(e.table.size <= maxConnections);
      }
      // Nothing emitted twice, nothing emitted that was not a primary input (compare by content: frames are copied).
      const seen = new Set<string>();
      const inputs = new Set([...primaries].map((f) => Buffer.from(f).toString('hex')));
      const counts = new Map<string, number>();
      for (const f of primaries) {
        const h = Buffer.from(f).toString('hex');
        counts.set(h, (counts.get(h) ?? 0) + 1);
      }
      for (const f of released) {
        const h = Buffer.from(f).toString('hex');
        assert.ok(inputs.has(h));
        const left = (counts.get(h) ?? 0) - 1;
        assert.ok(left >= 0, 'released more copies than were sent');
        counts.set(h, left);
        seen.add(h);
      }
    }),
    { numRuns: 400 },
  );
});

test('storage stays bounded by the queued bytes when a few packets wait for ever among many that match (slabs are compacted)', () => {
  const { e, out } = harness('qemu', { maxQueueSize: 1 << 20 });
  const matched = buildFrame({ proto: 'udp', srcPort: 1000, payload: new Uint8Array(1400).fill(1) });
  const input = new Uint8Array(1442);
  let now = 0;
  let worst = 0;
  for (let i = 0; i < 60_000; i++) {
    now += 0.01;
    if (i % 150 === 0) {
      // A primary of its own flow that the secondary never sends: it pins the slab it was copied into.
      const lone = buildFrame({ proto: 'udp', srcPort: 2000 + i, payload: new Uint8Array(1400).fill(2) });
      input.set(lone);
      e.primaryIn(input, 0, now);
    }
    input.set(matched);
    e.primaryIn(input, 0, now);
    e.secondaryIn(matched, 0, now);
    const bound = e.queuedBytes * 8 + 5 * 256 * 1024;
    worst = Math.max(worst, e.store.slabBytes - bound);
    assert.ok(e.store.slabBytes <= bound, `at ${i}: ${e.store.slabBytes} bytes of slabs for ${e.queuedBytes} queued`);
  }
  assert.equal(out.length, 60_000, 'every matched primary released');
  assert.equal(e.queuedPrimary, 400);
  assert.ok(e.counters.copiedOut > 0, 'sparse slabs were compacted');
  // The waiting packets still hold their own bytes.
  e.checkpointDone();
  assert.equal(out.length, 60_400);
  assert.ok(out.slice(60_000).every((f) => f.length === 1442 && f[100] === 2));
});

test('busiest: the connections holding the most packets, deepest first, with each side\'s depth and the oldest packet\'s age', () => {
  const { e } = harness('qemu');
  for (const [port, n] of [[1000, 2], [2000, 5], [3000, 1]] as const) {
    for (let i = 0; i < n; i++) e.primaryIn(udp(`p${i}`, { srcPort: port }), 0, 100 + i);
  }
  e.secondaryIn(udp('other', { srcPort: 4000 }), 0, 150);
  const b = e.busiest(2, 1000);
  assert.deepEqual(b.map((c) => [c.flow, c.primary, c.secondary]), [
    ['udp 10.0.0.1:2000 > 10.0.0.2:5678', 5, 0],
    ['udp 10.0.0.1:1000 > 10.0.0.2:5678', 2, 0],
  ]);
  assert.equal(b[0]!.oldestMs, 900);
  e.checkpointDone();
  assert.deepEqual(e.busiest(5, 2000), []);
});
