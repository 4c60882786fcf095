import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NetrrError } from '../src/errors.ts';
import { parseFilterList } from '../src/engine/filters/filter-spec.ts';

test('filter list: QEMU property names and defaults; position/insert place filters as QEMU does', () => {
  const l = parseFilterList(['buffer,id=b', 'dump,id=d,file=x.pcapng', 'buffer,id=first,mode=plug,position=head', 'dump,id=mid,file=y,position=id=b,insert=behind', 'buffer,id=pre,mode=interval,interval=20000,position=id=d,insert=before,queue=rx']);
  assert.deepEqual(l.map((f) => f.id), ['first', 'b', 'mid', 'pre', 'd']);
  const b = l[1]!;
  assert.ok(b.kind === 'buffer' && b.mode === 'epochs' && b.queue === 'all' && b.status && b.overflow === 'drop-tail' && b.onShutdown === 'drop');
  const d = l[4]!;
  assert.ok(d.kind === 'dump' && d.maxlen === 65536);
  const pre = l[3]!;
  assert.ok(pre.kind === 'buffer' && pre.intervalUs === 20000 && pre.queue === 'rx');
  assert.equal(parseFilterList(['buffer', 'buffer'])[1]!.id, 'buffer1', 'ids default to kind + position');
  // QEMU's ",," for a literal comma: an endpoint spec with options as a property value.
  const m = parseFilterList(['mirror,outdev=unix:/run/m.sock,,server=on,,vnet-hdr=on,queue=rx'])[0]!;
  assert.ok(m.kind === 'mirror' && m.outdev === 'unix:/run/m.sock,server=on,vnet-hdr=on' && m.queue === 'rx');
});

test('filter list: each mistake is one line naming the filter and the property (QEMU wording where QEMU has one)', () => {
  const cases: [string[], RegExp][] = [
    [['nope'], /filter #1: unknown kind "nope"/],
    [['buffer,colour=red'], /filter #1 \(buffer\): unknown property "colour"/],
    [['buffer,mode=interval'], /filter 'buffer0' \(buffer\): Property 'filter-buffer.interval' requires a positive value/],
    [['buffer,mode=interval,interval=0'], /Property 'filter-buffer.interval' requires a positive value/],
    [['buffer,interval=5'], /Parameter 'interval' applies to mode=interval only/],
    [['dump'], /filter 'dump0' \(dump\): dump filter needs 'file' property set!/],
    [['dump,file=a,maxlen=0'], /Parameter 'maxlen' requires a positive value/],
    [['buffer,id=a', 'dump,id=a,file=f'], /filter 'a' \(dump\): duplicate id 'a'/],
    [['buffer,position=id=ghost'], /filter 'buffer0' \(buffer\): filter 'ghost' not found/],
    [['buffer,position=middle'], /Invalid parameter 'position', expects 'head', 'tail' or 'id=<id>'/],
    [['buffer,queue=both'], /Parameter 'queue' expects 'all', 'rx', 'tx', got "both"/],
    [['buffer,status=maybe'], /Parameter 'status' expects 'on', 'off'/],
    [['buffer,limit-frames=-3'], /Parameter 'limit-frames' expects a non-negative integer, got "-3"/],
    [['buffer,overflow=panic'], /Parameter 'overflow' expects 'drop-tail', 'checkpoint', 'backpressure'/],
    [['buffer,limit-bytes=100,hard-limit-bytes=10'], /'hard-limit-bytes' \(10\) must be at least 'limit-bytes' \(100\)/],
    [['mirror'], /filter 'mirror0' \(mirror\): filter-mirror parameter 'outdev' cannot be empty/],
    [['record'], /filter 'record0' \(record\): record filter needs 'log' property set/],
    [['record,log=x,sync=sometimes'], /Parameter 'sync' expects 'none', 'always' or 'interval:MS', got "sometimes"/],
    [['record,log=x,order=whenever'], /Parameter 'order' expects 'log-first', 'forward-first'/],
    [['redirector'], /filter-redirector needs 'indev' or 'outdev' at least one property set/],
    [['redirector,indev=unix:/a,outdev=unix:/a'], /'indev' and 'outdev' could not be same for filter-redirector/],
    [['mirror,outdev=unix:/m,vnet_hdr_support=yes'], /Parameter 'vnet_hdr_support' expects 'on', 'off'/],
    [['rewriter,mode=fast'], /filter 'rewriter0' \(rewriter\): Parameter 'mode' expects 'qemu', 'extended', got "fast"/],
    [['rewriter,mode=qemu,ts-offset=on'], /Parameter 'ts-offset' applies to mode=extended only/],
    [['rewriter,outdev=unix:/x'], /filter #1 \(rewriter\): unknown property "outdev"/],
  ];
  for (const [specs, re] of cases) {
    assert.throws(() => parseFilterList(specs), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_BAD_OPTION' && re.test(e.message) && !e.message.includes('\n'), specs.join(' '));
  }
});
