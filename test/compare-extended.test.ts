import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NetrrError } from '../src/errors.ts';
import { parseBypassRule } from '../src/engine/colo-compare/bypass-rules.ts';
import { type CheckpointRequest, CompareEngine, type CompareMode, compareConfig } from '../src/engine/colo-compare/compare-engine.ts';
import { parseNormalizers } from '../src/engine/colo-compare/normalizers.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH } from '../src/packet/l4.ts';
import { buildFrame } from './helpers/build-packet.ts';

function harness(mode: CompareMode, extra: Parameters<typeof compareConfig>[0] = {}) {
  const out: Uint8Array[] = [];
  const reqs: CheckpointRequest[] = [];
  const e = new CompareEngine(compareConfig({ mode, ...extra }), { release: (f) => out.push(Uint8Array.from(f)), checkpoint: (r) => reqs.push(r) });
  return { e, out, reqs };
}

test('bypass rules: parsing, CIDR and port ranges, clear errors', () => {
  const r = parseBypassRule('proto=udp,src=10.0.0.0/8,dport=100-200');
  assert.equal(r.proto, 17);
  assert.deepEqual(r.dport, [100, 200]);
  assert.equal(parseBypassRule('dst=fd00::/16').dst!.family, 6);
  for (const bad of ['', 'proto=xyz', 'src=300.1.1.1', 'dport=9-1', 'sport=70000', 'colour=red', 'src=10.0.0.0/33', 'noequals']) {
    assert.throws(() => parseBypassRule(bad), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_BAD_OPTION', bad);
  }
  fc.assert(fc.property(fc.string(), (s) => {
    try {
      parseBypassRule(s);
    } catch (e) {
      assert.ok(e instanceof NetrrError && e.code === 'ERR_BAD_OPTION');
    }
  }));
});

test('bypass: matching traffic is released at once (primary) or dropped (secondary), counted per rule', () => {
  const rule = parseBypassRule('proto=udp,dst=10.0.0.0/24,dport=123');
  const { e, out, reqs } = harness('extended', { bypass: [rule] });
  const ntpP = buildFrame({ proto: 'udp', dstPort: 123, payload: 'time=1' });
  const ntpS = buildFrame({ proto: 'udp', dstPort: 123, payload: 'time=2' });
  e.primaryIn(ntpP, 0, 0);
  assert.deepEqual(out, [ntpP]);
  e.secondaryIn(ntpS, 0, 0);
  assert.equal(reqs.length, 0, 'different payloads on a bypassed flow are not a divergence');
  assert.equal(rule.hits, 2);
  assert.equal(e.counters.primary.bypassed, 1);
  assert.equal(e.counters.secondary.bypassed, 1);
  // Other flows are still compared.
  e.primaryIn(buildFrame({ proto: 'udp', dstPort: 124, payload: 'a' }), 0, 0);
  e.secondaryIn(buildFrame({ proto: 'udp', dstPort: 124, payload: 'b' }), 0, 0);
  assert.equal(reqs.length, 1);
});

test('normalizers: "other" protocols differing only in IP ID/TTL match in extended mode, diverge in qemu mode or with none', () => {
  const gre = (id: number, ttl: number) => buildFrame({ proto: 47, ipId: id, ttl, payload: 'gre payload' });
  for (const [mode, normalize, expectMatch] of [['extended', 'default', true], ['extended', 'none', false], ['qemu', undefined, false]] as const) {
    const { e, out, reqs } = harness(mode, normalize === undefined ? {} : { normalizers: parseNormalizers(normalize) });
    e.primaryIn(gre(1, 64), 0, 0);
    e.secondaryIn(gre(2, 63), 0, 0);
    assert.equal(out.length, expectMatch ? 1 : 0, `${mode}/${normalize}`);
    assert.equal(reqs.length, expectMatch ? 0 : 1);
    if (!expectMatch && mode === 'extended') assert.equal(reqs[0]!.divergence.firstDiffOffset, 14 + 5, 'first unnormalized difference: the low byte of the IP ID (1 vs 2)');
  }
  // A real payload difference still diverges with the default normalizers.
  const { e, reqs } = harness('extended');
  e.primaryIn(buildFrame({ proto: 47, payload: 'x1' }), 0, 0);
  e.secondaryIn(buildFrame({ proto: 47, payload: 'x2' }), 0, 0);
  assert.equal(reqs.length, 1);
});

test('normalizers: TCP timestamps ignored by default; a FIN on one side only is a header divergence', () => {
  const seg = (ts: number, flags: number, window = 1000) =>
    buildFrame({ proto: 'tcp', seq: 1, tcpFlags: flags, window, tcpOptions: [1, 1, 8, 10, 0, 0, 0, ts, 0, 0, 0, 9], payload: 'same data' });
  const a = harness('extended');
  a.e.primaryIn(seg(1, TCP_ACK | TCP_PSH), 0, 0);
  a.e.secondaryIn(seg(2, TCP_ACK | TCP_PSH), 0, 0);
  assert.equal(a.out.length, 1);
  assert.equal(a.reqs.length, 0);
  const b = harness('extended');
  b.e.primaryIn(seg(1, TCP_ACK | TCP_FIN), 0, 0);
  b.e.secondaryIn(seg(1, TCP_ACK), 0, 0);
  assert.equal(b.out.length, 0);
  assert.equal(b.reqs[0]!.cause, 'header');
  assert.equal(b.reqs[0]!.divergence.field, 'tcp-flags');
  const c = harness('extended', { normalizers: parseNormalizers('ip-id,ttl') });
  c.e.primaryIn(seg(1, TCP_ACK, 1000), 0, 0);
  c.e.secondaryIn(seg(2, TCP_ACK, 1000), 0, 0);
  assert.equal(c.reqs[0]!.divergence.field, 'tcp-options', 'timestamps compared when not normalized');
  const d = harness('qemu');
  d.e.primaryIn(seg(1, TCP_ACK | TCP_FIN), 0, 0);
  d.e.secondaryIn(seg(2, TCP_ACK), 0, 0);
  assert.equal(d.out.length, 1, 'qemu mode compares TCP payload only');
  assert.throws(() => parseNormalizers('ip-id,bogus'), { code: 'ERR_BAD_OPTION' });
});

/** Splits an IPv4 frame built by buildFrame into fragments at the given payload offsets (multiples of 8). */
function fragmentV4(frame: Uint8Array, cuts: number[]): Uint8Array[] {
  const l3 = 14;
  const ihl = (frame[l3]! & 0x0f) * 4;
  const payload = frame.subarray(l3 + ihl);
  const points = [0, ...cuts, payload.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const part = payload.subarray(points[i]!, points[i + 1]!);
    const f = new Uint8Array(l3 + ihl + part.length);
    f.set(frame.subarray(0, l3 + ihl));
    f.set(part, l3 + ihl);
    const total = ihl + part.length;
    f[l3 + 2] = total >> 8;
    f[l3 + 3] = total & 0xff;
    const fo = points[i]! / 8 | (i + 2 < points.length ? 0x2000 : 0);
    f[l3 + 6] = fo >> 8;
    f[l3 + 7] = fo & 0xff;
    out.push(f);
  }
  return out;
}

/** Splits an IPv6 frame into fragments with a fragment header (id 0x1234). */
function fragmentV6(frame: Uint8Array, cuts: number[]): Uint8Array[] {
  const l3 = 14;
  const nh = frame[l3 + 6]!;
  const payload = frame.subarray(l3 + 40);
  const points = [0, ...cuts, payload.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const part = payload.subarray(points[i]!, points[i + 1]!);
    const f = new Uint8Array(l3 + 48 + part.length);
    f.set(frame.subarray(0, l3 + 40));
    f[l3 + 6] = 44;
    const plen = 8 + part.length;
    f[l3 + 4] = plen >> 8;
    f[l3 + 5] = plen & 0xff;
    const fo = points[i]! | (i + 2 < points.length ? 1 : 0);
    f.set([nh, 0, fo >> 8, fo & 0xff, 0, 0, 0x12, 0x34], l3 + 40);
    f.set(part, l3 + 48);
    out.push(f);
  }
  return out;
}

test('fragments: a datagram fragmented differently on each side (or only on one) matches; the primary fragments come out as sent', () => {
  for (const ip of [4, 6] as const) {
    const whole = buildFrame({ ip, proto: 'udp', payload: 'x'.repeat(100) + 'tail' });
    const frag = ip === 4 ? fragmentV4 : fragmentV6;
    const { e, out, reqs } = harness('extended');
    const pri = frag(whole, [16, 48]);
    const sec = frag(whole, [64]);
    e.primaryIn(pri[2]!, 0, 0); // out of order
    e.primaryIn(pri[0]!, 0, 0);
    e.secondaryIn(sec[0]!, 0, 0);
    e.primaryIn(pri[1]!, 0, 0);
    assert.equal(out.length, 0);
    e.secondaryIn(sec[1]!, 0, 0);
    assert.deepEqual(out, [pri[2], pri[0], pri[1]], `IPv${ip}: the primary's fragments, in arrival order`);
    assert.equal(reqs.length, 0);
    assert.equal(e.counters.reassembled, 2);
    // Fragmented on the primary only.
    const h = harness('extended');
    for (const f of frag(whole, [8])) h.e.primaryIn(f, 0, 0);
    h.e.secondaryIn(whole, 0, 0);
    assert.equal(h.out.length, 2);
    // Different content in one fragment diverges.
    const other = buildFrame({ ip, proto: 'udp', payload: 'x'.repeat(100) + 'TAIL' });
    const d = harness('extended');
    for (const f of frag(whole, [32])) d.e.primaryIn(f, 0, 0);
    for (const f of frag(other, [32])) d.e.secondaryIn(f, 0, 0);
    assert.equal(d.reqs.length, 1);
    assert.equal(d.out.length, 0);
    d.e.checkpointDone();
    assert.equal(d.out.length, 2, 'flushed as the original fragments');
  }
});

test('fragments: overlaps are dropped and counted; incomplete datagrams time out and flush', () => {
  const whole = buildFrame({ proto: 'udp', payload: 'y'.repeat(64) });
  const [a, b] = fragmentV4(whole, [24]) as [Uint8Array, Uint8Array];
  const overlap = fragmentV4(whole, [16])[1]!; // offset 16 overlaps [0,24)
  const { e, out, reqs } = harness('extended', { compareTimeoutMs: 100 });
  e.primaryIn(a, 0, 0);
  e.primaryIn(overlap, 0, 0);
  assert.equal(e.counters.primary.badFragment, 2, 'the overlapping fragment and the one it collided with');
  e.primaryIn(b, 0, 10); // a lone tail now
  e.scan(50);
  assert.equal(reqs.length, 0);
  e.scan(200);
  assert.equal(reqs[0]!.cause, 'timeout');
  e.checkpointDone();
  assert.deepEqual(out, [b]);
  const c = e.counters;
  assert.equal(c.primary.in, c.released() + c.primary.badFragment + e.queuedPrimary + e.heldFragments.primary);
});
