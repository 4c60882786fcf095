import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Demo, bytesLine } from '../src/app/demo.ts';
import type { CounterTree } from '../src/engine/counter-tree.ts';
import { labelValue, metricName, prometheusText } from '../src/app/live/metrics-text.ts';
import { DEFAULT_DEMO_TRAFFIC, DEMO_MSS, demoFileByte, replicaOutput } from '../src/engine/demo-traffic.ts';
import { verifyL4Checksum } from '../src/packet/checksum.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { netrr } from './helpers/run.ts';

test('a replica\'s output: valid frames with good checksums; the download carries the file in order', () => {
  const frames = replicaOutput({ ...DEFAULT_DEMO_TRAFFIC, fileBytes: 100_000, pings: 5 });
  const kinds = frames.map((f) => f.kind);
  assert.deepEqual(kinds.slice(0, 3), ['arp', 'dns', 'tcp']);
  assert.equal(kinds.filter((k) => k === 'icmp').length, 5);
  const v = new PacketView();
  const body: number[] = [];
  let next = -1;
  for (const f of frames) {
    v.decode(f.frame);
    assert.equal(v.malformed, null, f.kind);
    if (f.kind === 'arp') continue;
    assert.equal(verifyL4Checksum(v), true, `${f.kind} checksum`);
    if (f.kind !== 'tcp' || v.payloadLength === 0) continue;
    if (next >= 0) assert.equal(v.tcpSeq, next, 'contiguous');
    next = (v.tcpSeq + v.payloadLength) >>> 0;
    for (let i = 0; i < v.payloadLength; i++) body.push(f.frame[v.payloadOffset + i]!);
    assert.ok(v.payloadLength <= DEMO_MSS);
  }
  const text = Buffer.from(body).toString('latin1');
  const head = text.indexOf('\r\n\r\n') + 4;
  assert.match(text, /^HTTP\/1\.0 200 OK\r\nContent-Length: 100000\r\n/);
  assert.equal(body.length - head, 100_000);
  for (let i = 0; i < 100_000; i += 997) assert.equal(body[head + i], demoFileByte(i));
});

test('property: the secondary differs from the primary in exactly one byte of the chosen segment, or not at all', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 30_000 }), fc.integer({ min: -1, max: 40 }), fc.integer({ min: 0, max: 2000 }), (fileBytes, seg, off) => {
      const o = { fileBytes, pings: 3, divergeSegment: -1, divergeOffset: 0 };
      const p = replicaOutput(o);
      const s = replicaOutput({ ...o, divergeSegment: seg, divergeOffset: off });
      assert.equal(p.length, s.length);
      let bytes = 0;
      p.forEach((f, i) => {
        const g = s[i]!.frame;
        assert.equal(f.frame.length, g.length);
        for (let k = 0; k < g.length; k++) if (f.frame[k] !== g[k]) bytes++;
      });
      const segments = Math.ceil((fileBytes + `HTTP/1.0 200 OK\r\nContent-Length: ${fileBytes}\r\n\r\n`.length) / DEMO_MSS);
      // One payload byte, and the TCP checksum's two bytes (one or both change).
      if (seg >= 0 && seg < segments) assert.ok(bytes >= 2 && bytes <= 3, `${bytes} bytes differ`);
      else assert.equal(bytes, 0);
    }),
    { numRuns: 60 },
  );
});

test('metrics: names from counter paths, _total on counters, endpoints and filters as labels, one family per name, hold times as a histogram', () => {
  assert.equal(metricName('primary.noPayload'), 'netrr_primary_no_payload');
  assert.equal(labelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const ep = (rx: number): CounterTree => ({ rxFrames: rx, txFrames: 1, txQueuedFrames: 2, port: { sent: 1, backlogFrames: 0 } });
  const text = prometheusText([
    { name: 'c0', tree: { primary: { in: 3, matched: 2 }, queued: { primary: 1 }, store: { slabsInUse: 1 }, endpoints: { 'primary-in': ep(3) } } },
    { name: 'b0', tree: { guest: ep(7), filters: { b: { enqueued: 4, backlogFrames: 1, dropped: { overlimit: 0 }, holdTime: { count: 4, sumMs: 52, buckets: { 'le1ms': 1, 'le10ms': 2, 'le100ms': 1, more: 0 } } } }, bad: Number.NaN } },
  ]);
  assert.equal(text, [
    '# TYPE netrr_primary_in_total counter', 'netrr_primary_in_total{instance="c0"} 3',
    '# TYPE netrr_primary_matched_total counter', 'netrr_primary_matched_total{instance="c0"} 2',
    '# TYPE netrr_queued_primary gauge', 'netrr_queued_primary{instance="c0"} 1',
    '# TYPE netrr_store_slabs_in_use gauge', 'netrr_store_slabs_in_use{instance="c0"} 1',
    '# TYPE netrr_endpoint_rx_frames_total counter', 'netrr_endpoint_rx_frames_total{instance="c0",endpoint="primary-in"} 3', 'netrr_endpoint_rx_frames_total{instance="b0",endpoint="guest"} 7',
    '# TYPE netrr_endpoint_tx_frames_total counter', 'netrr_endpoint_tx_frames_total{instance="c0",endpoint="primary-in"} 1', 'netrr_endpoint_tx_frames_total{instance="b0",endpoint="guest"} 1',
    '# TYPE netrr_endpoint_tx_queued_frames gauge', 'netrr_endpoint_tx_queued_frames{instance="c0",endpoint="primary-in"} 2', 'netrr_endpoint_tx_queued_frames{instance="b0",endpoint="guest"} 2',
    '# TYPE netrr_endpoint_port_sent_total counter', 'netrr_endpoint_port_sent_total{instance="c0",endpoint="primary-in"} 1', 'netrr_endpoint_port_sent_total{instance="b0",endpoint="guest"} 1',
    '# TYPE netrr_endpoint_port_backlog_frames gauge', 'netrr_endpoint_port_backlog_frames{instance="c0",endpoint="primary-in"} 0', 'netrr_endpoint_port_backlog_frames{instance="b0",endpoint="guest"} 0',
    '# TYPE netrr_filter_enqueued_total counter', 'netrr_filter_enqueued_total{instance="b0",filter="b"} 4',
    '# TYPE netrr_filter_backlog_frames gauge', 'netrr_filter_backlog_frames{instance="b0",filter="b"} 1',
    '# TYPE netrr_filter_dropped_overlimit_total counter', 'netrr_filter_dropped_overlimit_total{instance="b0",filter="b"} 0',
    '# TYPE netrr_filter_hold_time_seconds histogram',
    'netrr_filter_hold_time_seconds_bucket{instance="b0",filter="b",le="0.001"} 1',
    'netrr_filter_hold_time_seconds_bucket{instance="b0",filter="b",le="0.01"} 3',
    'netrr_filter_hold_time_seconds_bucket{instance="b0",filter="b",le="0.1"} 4',
    'netrr_filter_hold_time_seconds_bucket{instance="b0",filter="b",le="+Inf"} 4',
    'netrr_filter_hold_time_seconds_sum{instance="b0",filter="b"} 0.052',
    'netrr_filter_hold_time_seconds_count{instance="b0",filter="b"} 4',
    '',
  ].join('\n'));
});

test('property: every metrics line is valid Prometheus exposition', () => {
  const key = fc.string({ minLength: 1, maxLength: 12 });
  const tree = fc.letrec((tie) => ({ node: fc.dictionary(key, fc.oneof(fc.integer(), tie('node')), { maxKeys: 4 }) })).node;
  fc.assert(
    fc.property(fc.array(fc.record({ name: fc.string(), tree }), { maxLength: 3 }), (instances) => {
      const text = prometheusText(instances as { name: string; tree: CounterTree }[]);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        assert.match(line, /^(# TYPE netrr_[a-z0-9_]+ (counter|gauge|histogram)|netrr_[a-z0-9_]+\{instance="(?:[^"\\\n]|\\["\\n])*"(,(endpoint|filter)="(?:[^"\\\n]|\\["\\n])*")*(,le="(\+Inf|[0-9.e-]+)")?\} -?[0-9.e+-]+)$/, line);
      }
    }),
  );
});

test('the summary\'s byte lines bracket the differing bytes and show the text', () => {
  assert.equal(bytesLine('414243', '416243'), ' 41 [42] 43  |ABC|');
});

test('netrr demo: the world gets every primary frame once, one payload divergence at the chosen byte requests one checkpoint, epochs commit', async () => {
  const r = await netrr(['demo', '--duration-ms', '1500', '--file-bytes', '1000000', '--json'], 60_000);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /live page at http:\/\/127\.0\.0\.1:\d+\//);
  const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    complete: boolean; compared: { primary: number; secondary: number }; released: Record<string, number>; checkpoints: Record<string, number>;
    divergence: { cause: string; firstDiffOffset: number; primary: { context: string }; secondary: { context: string } }; epochsCommitted: number; world: { frames: number }; buffer: { released: number };
  };
  assert.equal(s.complete, true);
  assert.equal(s.compared.primary, s.compared.secondary);
  assert.equal(s.world.frames, s.compared.primary);
  assert.equal(Object.values(s.released).reduce((a, b) => a + b, 0), s.compared.primary, 'each primary released once');
  assert.ok(s.released.flushed! > 0, 'the checkpoint flushed what compare held');
  assert.deepEqual(s.checkpoints, { payload: 1 });
  assert.equal(s.divergence.firstDiffOffset, 100);
  assert.notEqual(s.divergence.primary.context, s.divergence.secondary.context);
  assert.ok(s.epochsCommitted > 5);
  assert.equal(s.buffer.released, s.world.frames);
});

test('the live server answers /, /api/snapshot, /events and /metrics while a demo runs, and 404/405 otherwise', async () => {
  const lines: string[] = [];
  const demo = new Demo({ durationMs: 1000, traffic: { ...DEFAULT_DEMO_TRAFFIC, fileBytes: 300_000, divergeSegment: 50, divergeOffset: 7 }, host: '127.0.0.1', port: 0, lingerMs: 0, log: (l) => lines.push(l) });
  const running = demo.run();
  try {
    const base = await new Promise<string>((resolve) => {
      const t = setInterval(() => {
        const m = lines.map((l) => /live page at (\S+)/.exec(l)).find((x) => x !== null);
        if (m) {
          clearInterval(t);
          resolve(m[1]!);
        }
      }, 10);
    });
    const page = await fetch(base);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<title>netrr live<\/title>/);
    assert.doesNotMatch(html, /(src|href)="https?:/, 'no external assets');
    const snap = (await (await fetch(`${base}api/snapshot`)).json()) as { instances: { name: string; kind: string }[] };
    assert.deepEqual(snap.instances.map((i) => [i.name, i.kind]), [['compare', 'compare'], ['buffer', 'chain']]);
    const ctl = new AbortController();
    const ev = await fetch(`${base}events`, { signal: ctl.signal });
    assert.equal(ev.headers.get('content-type'), 'text/event-stream');
    const reader = ev.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /^data: \{"t":\d+,"instances":/);
    ctl.abort();
    const metrics = await (await fetch(`${base}metrics`)).text();
    assert.match(metrics, /^# TYPE netrr_primary_in_total counter$/m);
    assert.match(metrics, /^netrr_primary_in_total\{instance="compare"\} \d+$/m);
    assert.match(metrics, /^netrr_endpoint_rx_frames_total\{instance="compare",endpoint="primary-in"\} \d+$/m);
    assert.match(metrics, /^netrr_filter_epochs_committed_total\{instance="buffer",filter="epochs"\} \d+$/m);
    assert.match(metrics, /^netrr_queued_primary\{instance="compare"\} \d+$/m);
    assert.equal((await fetch(`${base}nope`)).status, 404);
    assert.equal((await fetch(base, { method: 'POST' })).status, 405);
    const s = await running;
    assert.equal(s.complete, true);
    assert.equal(s.divergence?.firstDiffOffset, 7);
  } finally {
    await running.catch(() => {});
    await demo.close();
  }
});
