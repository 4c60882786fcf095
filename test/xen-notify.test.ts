import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameDecoder } from '../src/codec/qemu-framing.ts';
import { NOTIFY_MESSAGES, encodeNotify, parseNotify } from '../src/codec/xen-notify.ts';
import { NetrrError } from '../src/errors.ts';

test('notify messages are be32 length + ASCII, no NUL', () => {
  const wire = encodeNotify('DO_CHECKPOINT');
  assert.deepEqual([...wire.subarray(0, 4)], [0, 0, 0, 13]);
  assert.equal(Buffer.from(wire.subarray(4)).toString('latin1'), 'DO_CHECKPOINT');
  assert.equal(encodeNotify('COLO_USERSPACE_PROXY_INIT').length, 4 + 25);
});

test('every message round-trips through the framing decoder', () => {
  for (const m of NOTIFY_MESSAGES) {
    let got: string | null = null;
    new FrameDecoder({ vnetHdr: false }, (f) => (got = parseNotify(f))).push(encodeNotify(m));
    assert.equal(got, m);
  }
});

test('unknown instructions are ERR_NOTIFY_UNKNOWN with the text shown', () => {
  assert.throws(() => parseNotify(new TextEncoder().encode('COLO_FOO')), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_NOTIFY_UNKNOWN' && e.message.includes('COLO_FOO'));
  assert.throws(() => parseNotify(new TextEncoder().encode('DO_CHECKPOINT\0')), { code: 'ERR_NOTIFY_UNKNOWN' });
});

test('property: arbitrary payloads parse to a known message or a coded error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
      try {
        assert.ok(NOTIFY_MESSAGES.includes(parseNotify(b)));
      } catch (e) {
        assert.ok(e instanceof NetrrError && e.code === 'ERR_NOTIFY_UNKNOWN');
      }
    }),
  );
});
