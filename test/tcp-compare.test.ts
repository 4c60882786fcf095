// colo_mark_tcp_pkt's decisions (src/engine/colo-compare/tcp-compare.ts),
// one by one, on packets built directly: whole match, partial matches either
// way, the ACK rule, a payload miss, and extended mode's header compare.

import assert from 'node:assert/strict';
import test from 'node:test';
import { ComparePacket } from '../src/engine/colo-compare/compare-packet.ts';
import { MARK_BOTH, MARK_PRIMARY, MARK_SECONDARY, MISS_ACK, MISS_HEADER, MISS_PAYLOAD, markTcp, seqAfter } from '../src/engine/colo-compare/tcp-compare.ts';
import { N_TCP_TS, N_TCP_WINDOW } from '../src/engine/colo-compare/normalizers.ts';

const L4 = 34;
const HDR = L4 + 20;

function seg(seq: number, payload: string, ack = 1, window = 1000): ComparePacket {
  const p = new ComparePacket();
  const buf = new Uint8Array(HDR + payload.length);
  buf[L4 + 12] = 5 << 4;
  buf[L4 + 13] = 0x18;
  buf[L4 + 14] = window >> 8;
  buf[L4 + 15] = window & 0xff;
  buf.set(new TextEncoder().encode(payload), HDR);
  p.buf = buf;
  p.len = buf.length;
  p.l4Offset = L4;
  p.headerSize = HDR;
  p.payloadSize = payload.length;
  p.tcpSeq = seq;
  p.seqEnd = (seq + payload.length) >>> 0;
  p.tcpAck = ack;
  return p;
}

test('seqAfter is wrap-aware', () => {
  assert.ok(seqAfter(5, 0xfffffff0));
  assert.ok(!seqAfter(0xfffffff0, 5));
  assert.ok(!seqAfter(7, 7));
});

test('the same segment on both sides matches both; a different byte is a payload miss', () => {
  assert.equal(markTcp(seg(100, 'hello'), seg(100, 'hello'), 1, false, 0), MARK_BOTH);
  assert.equal(markTcp(seg(100, 'hello'), seg(100, 'hellO'), 1, false, 0), MISS_PAYLOAD);
});

test('segments cut differently match in part: the shorter side leaves, the other moves its offset', () => {
  const p = seg(100, 'abc');
  const s = seg(100, 'abcdef');
  assert.equal(markTcp(p, s, 1, false, 0), MARK_PRIMARY);
  assert.equal(s.offset, 3);
  const p2 = seg(103, 'def');
  assert.equal(markTcp(p2, s, 1, false, 0), MARK_PRIMARY);
  const big = seg(200, 'xyzuvw');
  const small = seg(200, 'xyz');
  assert.equal(markTcp(big, small, 1, false, 0), MARK_SECONDARY);
  assert.equal(big.offset, 3);
});

test('a primary that acknowledges beyond the secondary waits (cause ack)', () => {
  assert.equal(markTcp(seg(100, 'abc', 500), seg(100, 'abcdef', 400), 400, false, 0), MISS_ACK);
});

test('extended mode compares the headers of a whole match, normalized', () => {
  const a = seg(100, 'data', 1, 1000);
  const b = seg(100, 'data', 1, 2000);
  assert.equal(markTcp(a, b, 1, true, N_TCP_TS), MISS_HEADER, 'the window differs and is not normalized');
  assert.equal(markTcp(a, b, 1, true, N_TCP_WINDOW), MARK_BOTH);
  assert.equal(markTcp(a, b, 1, false, 0), MARK_BOTH, 'qemu mode compares payload only');
});
