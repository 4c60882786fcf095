// `netrr compare` as a process: reports (JSON lines + pcapng read by tshark),
// control-socket commands and events, extended-mode compare, and the QMP
// checkpoint sink against a real QEMU (x-checkpoint-delay kick, flush on
// STOP → RESUME).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { Qemu } from './helpers/qemu.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, run, start, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir('netrr-cmp-');
after(() => tmp.cleanup());

async function launch(d: string, extra: string[]): Promise<{ proc: ReturnType<typeof start>; eps: Record<'pri' | 'sec' | 'out', FrameEndpoint>; ctl: ControlClient; out: Uint8Array[] }> {
  const proc = start(process.execPath, [NETRR_BIN, 'compare', '--primary-in', `unix:${d}/pri.sock,server=on`, '--secondary-in', `unix:${d}/sec.sock,server=on`, '--outdev', `unix:${d}/out.sock,server=on`, '--control', `unix:${d}/ctl.sock`, ...extra]);
  await waitFor(() => proc.child.exitCode !== null || ['pri', 'sec', 'out', 'ctl'].every((n) => existsSync(`${d}/${n}.sock`)), 10_000, 'compare sockets');
  assert.equal(proc.child.exitCode, null, proc.out());
  const eps = { out: createEndpoint(`unix:${d}/out.sock`), pri: createEndpoint(`unix:${d}/pri.sock`), sec: createEndpoint(`unix:${d}/sec.sock`) };
  const out: Uint8Array[] = [];
  eps.out.onFrame = (f) => out.push(Uint8Array.from(f));
  for (const ep of [eps.out, eps.pri, eps.sec]) {
    await ep.start();
    await ep.waitConnected(5000);
  }
  const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
  // All three peers attached on the proxy's side?
  for (let i = 0; i < 50; i++) {
    const st = (await ctl.execute('query-status')) as { endpoints: { connected: boolean }[] };
    if (st.endpoints.every((e) => e.connected)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, eps, ctl, out };
}

async function shutdown(x: { proc: ReturnType<typeof start>; eps: Record<string, FrameEndpoint>; ctl: ControlClient }): Promise<void> {
  await x.ctl.execute('quit');
  await waitFor(() => x.proc.child.exitCode !== null, 10_000, 'compare exit');
  assert.equal(x.proc.child.exitCode, 0, x.proc.out());
  for (const ep of Object.values(x.eps)) await ep.close();
}

test('netrr compare (extended): divergence → event, JSON report, pcapng report; checkpoint-done releases; failover passes through', async () => {
  const d = join(tmp.path, 'a');
  (await import('node:fs')).mkdirSync(d);
  const report = join(d, 'report.jsonl');
  const pcap = join(d, 'report.pcapng');
  const x = await launch(d, ['--report', report, '--report-pcap', pcap, '--compare-timeout', '60000']);
  try {
    // IPv6 and VLAN are compared in extended mode: identical ones come out once.
    const v6 = buildFrame({ ip: 6, proto: 'udp', payload: 'six' });
    const vlan = buildFrame({ vlans: [7], proto: 'tcp', seq: 100, payload: 'tagged tcp' });
    for (const f of [v6, vlan]) {
      x.eps.pri.send(f, 0);
      x.eps.sec.send(f, 0);
    }
    await waitFor(() => x.out.length === 2, 5000, 'identical IPv6 and VLAN released');
    const p = buildFrame({ proto: 'udp', srcPort: 4444, payload: 'temperature=21.5C' });
    const s = buildFrame({ proto: 'udp', srcPort: 4444, payload: 'temperature=21.6C' });
    x.eps.pri.send(p, 0);
    await new Promise((r) => setTimeout(r, 50));
    x.eps.sec.send(s, 0);
    await waitFor(() => x.ctl.events.some((e) => e.event === 'CHECKPOINT_REQUEST'), 5000, 'CHECKPOINT_REQUEST event');
    const ev = x.ctl.events.find((e) => e.event === 'CHECKPOINT_REQUEST')!;
    assert.equal(ev.data.cause, 'payload');
    assert.equal(ev.data.flow, 'udp 10.0.0.1:4444 > 10.0.0.2:5678');
    assert.equal(x.out.length, 2, 'the divergent primary is held');
    await x.ctl.execute('checkpoint-done');
    await waitFor(() => x.out.length === 3, 5000, 'released on checkpoint-done');
    assert.deepEqual(x.out[2], p);
    await x.ctl.execute('failover');
    const lone = buildFrame({ proto: 'udp', payload: 'after failover' });
    x.eps.pri.send(lone, 0);
    await waitFor(() => x.out.length === 4, 5000, 'passthrough after failover');
    const st = (await x.ctl.execute('query-status')) as { counters: { primary: Record<string, number>; checkpointRequests: number }; failedOver: boolean; reportsWritten: number };
    assert.equal(st.counters.primary.in, 4);
    assert.equal(st.counters.primary.matched, 2);
    assert.equal(st.counters.primary.flushed, 1);
    assert.equal(st.counters.primary.failover, 1);
    assert.equal(st.counters.checkpointRequests, 1);
    assert.ok(st.failedOver);
    assert.equal(st.reportsWritten, 1);
  } finally {
    await shutdown(x);
  }
  const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.cause, 'payload');
  assert.equal(lines[0]!.flow, 'udp 10.0.0.1:4444 > 10.0.0.2:5678');
  assert.equal(typeof lines[0]!.firstDiffOffset, 'number');
  assert.match(String((lines[0]!.primary as { context: string }).context), /^[0-9a-f]+$/);
  const c = await run('capinfos', [pcap]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stderr, '');
  const t = await run('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.comment', '-e', 'udp.payload']);
  assert.equal(tsharkStderr(t.stderr), '');
  const rows = t.stdout.trim().split('\n').map((r) => r.split('\t'));
  assert.deepEqual(rows.map((r) => r[0]), ['primary', 'secondary']);
  for (const r of rows) assert.match(r[1]!, /^checkpoint request: payload on udp 10\.0\.0\.1:4444 > 10\.0\.0\.2:5678, first difference at byte \d+$/);
  assert.equal(Buffer.from(rows[0]![2]!, 'hex').toString(), 'temperature=21.5C');
  assert.equal(Buffer.from(rows[1]![2]!, 'hex').toString(), 'temperature=21.6C');
});

test('netrr compare --qmp against real QEMU: a divergence kicks x-checkpoint-delay; STOP → RESUME flushes', async () => {
  const d = join(tmp.path, 'q');
  (await import('node:fs')).mkdirSync(d);
  // Two monitors: one for netrr, one for the test playing the COLO checkpoint.
  const q = new Qemu(['-qmp', `unix:${d}/qmp.sock,server=on,wait=off`, '-qmp', `unix:${d}/test-qmp.sock,server=on,wait=off`]);
  await q.waitForSockets([`${d}/qmp.sock`, `${d}/test-qmp.sock`]);
  const x = await launch(d, ['--qmp', `unix:${d}/qmp.sock`, '--mode', 'qemu']);
  const qmp = await ControlClient.connect(`unix:${d}/test-qmp.sock`);
  try {
    x.eps.pri.send(buildFrame({ proto: 'udp', payload: 'AAA' }), 0);
    x.eps.sec.send(buildFrame({ proto: 'udp', payload: 'BBB' }), 0);
    await waitFor(() => x.ctl.events.some((e) => e.event === 'CHECKPOINT_REQUEST'), 5000, 'request');
    for (let i = 0; i < 50; i++) {
      const st = (await x.ctl.execute('query-status')) as { qmpKicks: number };
      if (st.qmpKicks === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const st1 = (await x.ctl.execute('query-status')) as { qmpKicks: number };
    assert.equal(st1.qmpKicks, 1, 'migrate-set-parameters accepted by QEMU');
    assert.ok(!x.ctl.events.some((e) => e.event === 'QMP_ERROR'));
    assert.equal(x.out.length, 0);
    await qmp.execute('stop');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(x.out.length, 0, 'nothing released while the VM is stopped');
    await qmp.execute('cont');
    await waitFor(() => x.out.length === 1, 5000, 'flush on RESUME');
    assert.ok(x.ctl.events.some((e) => e.event === 'CHECKPOINT_DONE' && e.data.source === 'qmp'));
  } finally {
    qmp.close();
    await shutdown(x);
    await q.stop();
  }
});

test('netrr compare refuses QEMU-invalid settings with one clear line', async () => {
  const same = await run(process.execPath, [NETRR_BIN, 'compare', '--primary-in', 'unix:/tmp/x', '--secondary-in', 'unix:/tmp/x', '--outdev', 'unix:/tmp/y']);
  assert.equal(same.code, 64);
  assert.match(same.stderr, /must all differ \[ERR_BAD_OPTION\]\n$/);
  const zero = await run(process.execPath, [NETRR_BIN, 'compare', '--primary-in', 'unix:/tmp/a', '--secondary-in', 'unix:/tmp/b', '--outdev', 'unix:/tmp/c', '--compare-timeout', '0']);
  assert.equal(zero.code, 64);
  assert.match(zero.stderr, /--compare-timeout requires a positive value/);
});
