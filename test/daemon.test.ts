import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { parseCtlArguments } from '../src/cli/cmd-control.ts';
import { filterString, formatPath, validateConfig } from '../src/cli/run-config.ts';
import { logSegments } from '../src/io/log-file.ts';
import { ControlClient } from '../src/control/control-client.ts';
import { NetrrError } from '../src/errors.ts';
import { createLogger, readableLine } from '../src/io/logger.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, REPO_ROOT, netrr, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-daemon-');
after(() => tmp.cleanup());

const configError = (doc: unknown): string => {
  try {
    validateConfig(doc, 'c.yaml');
  } catch (e) {
    assert.ok(e instanceof NetrrError && e.code === 'ERR_CONFIG', String(e));
    return e.message;
  }
  assert.fail('valid');
};

test('config: every problem on its own line, with its place in the file, what was expected and what was found', () => {
  const msg = configError({
    instances: [
      { name: 'a', kind: 'compare', 'primary-in': 'unix:/p,server=on', outdev: 5, 'compare-timeout': 0, colour: 'blue' },
      { name: 'b', kind: 'chain', guest: 'unix:/g', upstream: 'unix:/n', filters: [{ kind: 'buffer', mode: 'interval', interval: -5 }] },
      { name: 'c', kind: 'teleport' },
    ],
  });
  const lines = msg.split('\n').map((l) => l.trim());
  assert.equal(lines[0], 'c.yaml: 6 problems');
  assert.ok(lines.includes('instances[1].filters[0].interval: expected a positive integer (µs), got -5'), msg);
  assert.ok(lines.includes('instances[0].compare-timeout: expected a positive integer (ms), got 0'), msg);
  assert.ok(lines.includes('instances[0]: unknown key "colour"'), msg);
  assert.ok(lines.some((l) => /^instances\[0\]\.secondary-in: expected an endpoint spec .*got nothing$/.test(l)), msg);
  assert.ok(lines.some((l) => /^instances\[0\]\.outdev: expected an endpoint spec .*got 5$/.test(l)), msg);
  assert.ok(lines.includes('instances[2].kind: expected kind: compare, chain, record or bridge, got "teleport"'), msg);
  assert.match(configError({ instances: [] }), /instances: expected at least one instance/);
  assert.match(configError({}), /instances: expected a list of instances, got nothing/);
  assert.match(configError({ metrics: 'nowhere', instances: [{ name: 'x', kind: 'bridge', a: 'unix:/a', b: 'unix:/b' }] }), /metrics: expected HOST:PORT, got "nowhere"/);
  const dup = { name: 'x', kind: 'bridge', a: 'unix:/a', b: 'unix:/b' };
  assert.match(configError({ instances: [dup, dup] }), /instances\[1\]\.name: "x" is already the name of instances\[0\]/);
});

test('config: a filter object becomes the -f string, with QEMU\'s ,, for a comma in a value', () => {
  assert.equal(filterString({ kind: 'buffer', mode: 'epochs', 'limit-frames': 5, status: true }), 'buffer,mode=epochs,limit-frames=5,status=on');
  assert.equal(filterString({ kind: 'mirror', outdev: 'unix:/m.sock,server=on' }), 'mirror,outdev=unix:/m.sock,,server=on');
  assert.equal(formatPath(['instances', 2, 'filters', 0, 'interval']), 'instances[2].filters[0].interval');
});

test('property: any document is a valid config or an ERR_CONFIG, never another throw', () => {
  fc.assert(
    fc.property(fc.oneof(fc.anything(), fc.record({ instances: fc.array(fc.dictionary(fc.constantFrom('name', 'kind', 'a', 'b', 'guest', 'filters', 'outdev'), fc.anything()), { maxLength: 3 }) })), (doc) => {
      try {
        validateConfig(doc);
      } catch (e) {
        assert.ok(e instanceof NetrrError && e.code === 'ERR_CONFIG', String(e));
      }
    }),
  );
});

test('ctl arguments: key=value pairs (values read as JSON where they parse) or one JSON object', () => {
  assert.equal(parseCtlArguments([]), undefined);
  assert.deepEqual(parseCtlArguments(['instance=colo0', 'epoch=3', 'on=true', 'x={"a":1}']), { instance: 'colo0', epoch: 3, on: true, x: { a: 1 } });
  assert.deepEqual(parseCtlArguments(['{"epoch": 2}']), { epoch: 2 });
  assert.throws(() => parseCtlArguments(['novalue']), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_USAGE');
  assert.throws(() => parseCtlArguments(['{bad']), (e: unknown) => e instanceof NetrrError && e.code === 'ERR_USAGE');
});

test('the README\'s example config is valid', async () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
  const d = tmp.sub();
  writeFileSync(join(d, 'netrr.yaml'), yaml);
  const r = await netrr(['run', '--check', join(d, 'netrr.yaml')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /3 instances: colo0 \(compare\), buf0 \(chain\), rec0 \(record\)/);
});

test('netrr run --check: a valid file lists its instances and starts nothing; a bad one lists its problems, exit 64; bad YAML says where', async () => {
  const d = tmp.sub();
  writeFileSync(join(d, 'ok.yaml'), `instances:\n  - name: b0\n    kind: bridge\n    a: unix:${d}/a.sock,server=on\n    b: unix:${d}/b.sock,server=on\n    capture: ${d}/cap.pcapng\n`);
  const ok = await netrr(['run', '--check', join(d, 'ok.yaml')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /valid; 1 instance: b0 \(bridge\)/);
  assert.ok(!existsSync(`${d}/a.sock`) && !existsSync(`${d}/cap.pcapng`), 'nothing opened');
  writeFileSync(join(d, 'spec.json'), JSON.stringify({ instances: [{ name: 'b0', kind: 'bridge', a: 'carrier-pigeon:1', b: `unix:${d}/b.sock` }] }));
  const spec = await netrr(['run', '--check', join(d, 'spec.json')]);
  assert.equal(spec.code, 64);
  assert.match(spec.stderr, /instances\[0\] \(b0\): bad endpoint "carrier-pigeon:1"/);
  writeFileSync(join(d, 'bad.yaml'), 'instances:\n  - name: [unclosed\n');
  const bad = await netrr(['run', join(d, 'bad.yaml')]);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /bad\.yaml:\d+:\d+: not valid YAML or JSON/);
  const missing = await netrr(['run', join(d, 'nope.yaml')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nope\.yaml/);
});

test('netrr run: a compare and a buffer chain in one process; commands by instance, events with their instance, /metrics, a hammered control socket keeps answering, SIGTERM prints the counters', async () => {
  const d = tmp.sub();
  const cfg = {
    control: `unix:${d}/ctl.sock`,
    metrics: '127.0.0.1:0',
    instances: [
      { name: 'colo0', kind: 'compare', 'primary-in': `unix:${d}/pri.sock,server=on`, 'secondary-in': `unix:${d}/sec.sock,server=on`, outdev: `unix:${d}/out.sock,server=on` },
      { name: 'buf0', kind: 'chain', guest: `unix:${d}/out.sock`, upstream: `unix:${d}/world.sock,server=on`, filters: [{ kind: 'buffer', id: 'b', mode: 'epochs' }] },
    ],
  };
  writeFileSync(join(d, 'netrr.json'), JSON.stringify(cfg));
  const proc = start(process.execPath, [NETRR_BIN, 'run', join(d, 'netrr.json')]);
  const eps: FrameEndpoint[] = [];
  let ctl: ControlClient | null = null;
  try {
    // Not a terminal: the log is JSON lines (pino).
    const logLines = (): Record<string, unknown>[] => proc.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(() => logLines().some((l) => l.msg === 'running') || proc.child.exitCode !== null, 15_000, 'daemon up');
    assert.equal(proc.child.exitCode, null, proc.out());
    const url = String(logLines().find((l) => l.msg === 'live page and /metrics')!.url);
    assert.deepEqual(logLines().find((l) => l.msg === 'running')!.instances, ['colo0 (compare)', 'buf0 (chain)']);
    ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
    const pri = createEndpoint(`unix:${d}/pri.sock`, { name: 'p' });
    const sec = createEndpoint(`unix:${d}/sec.sock`, { name: 's' });
    const world = createEndpoint(`unix:${d}/world.sock`, { name: 'w' });
    eps.push(pri, sec, world);
    let atWorld = 0;
    world.onFrame = () => atWorld++;
    for (const e of eps) await e.start();
    await Promise.all(eps.map((e) => e.waitConnected(10_000)));
    const N = 500;
    for (let i = 0; i < N; i++) {
      const f = buildFrame({ proto: 'udp', srcPort: 4000 + (i % 16), payload: `#${i}#`.padEnd(300, '.') });
      pri.send(f, 0);
      sec.send(f, 0);
    }
    // Compare releases into the buffer; nothing reaches the world before a commit.
    const bufferHolds = async (): Promise<number> => ((await ctl!.execute('query-filters', { instance: 'buf0' })) as { backlogFrames: number }[])[0]!.backlogFrames;
    const deadline = Date.now() + 10_000;
    while ((await bufferHolds()) < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await bufferHolds(), N);
    assert.equal(atWorld, 0);
    const begun = (await ctl.execute('epoch-begin', { instance: 'buf0' })) as { closed: number };
    // A command only one instance has needs no "instance".
    assert.equal(((await ctl.execute('query-filters')) as unknown[]).length, 1);
    await ctl.execute('epoch-commit', { instance: 'buf0', epoch: begun.closed });
    await waitFor(() => atWorld === N, 10_000, 'released to the world');
    const insts = (await ctl.execute('query-instances')) as { name: string; kind: string }[];
    assert.deepEqual(insts, [{ name: 'colo0', kind: 'compare' }, { name: 'buf0', kind: 'chain' }]);
    const st = (await ctl.execute('query-status', { instance: 'colo0' })) as { name: string; counters: { primary: { in: number } } };
    assert.equal(st.name, 'colo0');
    assert.equal(st.counters.primary.in, N);
    const all = (await ctl.execute('query-counters')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(all), ['colo0', 'buf0']);
    const events = (await ctl.execute('query-events', { instance: 'buf0' })) as { instance: string; event: string }[];
    assert.ok(events.some((e) => e.event === 'EPOCH_COMMITTED' && e.instance === 'buf0'), JSON.stringify(events));
    assert.ok(ctl.events.some((e) => e.event === 'EPOCH_COMMITTED' && e.data.instance === 'buf0'));
    await assert.rejects(ctl.execute('checkpoint-done', { instance: 'buf0' }), /has no such command/);
    await assert.rejects(ctl.execute('query-status', { instance: 'nope' }), /no instance "nope"/);
    const metrics = await (await fetch(`${url}metrics`)).text();
    assert.match(metrics, new RegExp(`^netrr_primary_in_total\\{instance="colo0"\\} ${N}$`, 'm'));
    assert.match(metrics, /^netrr_filter_epochs_committed_total\{instance="buf0",filter="b"\} 1$/m);
    // A hammered control socket: junk, unknown commands, an over-long line, many clients at once.
    const junk = ['{', '[]', '"x"', '{"execute": 5}', '{"execute": "nope"}', '{"execute": "query-status", "arguments": []}', '\u0000\u0001', 'null'];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = await ControlClient.connect(`unix:${d}/ctl.sock`);
        for (const j of junk) c.sendRaw(j);
        await c.execute('query-instances');
        c.close();
      }),
    );
    await new Promise<void>((resolve) => {
      const s = net.connect(`${d}/ctl.sock`, () => s.write('x'.repeat(2 * 1024 * 1024)));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    assert.deepEqual(await ctl.execute('query-instances'), insts, 'still answering');
    assert.equal((await fetch(`${url}metrics`)).status, 200);
    ctl.close();
    ctl = null;
    proc.child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c)));
    assert.equal(code, 0, proc.out());
    const stopped = logLines().filter((l) => l.msg === 'stopped');
    assert.deepEqual(stopped.map((l) => l.instance), ['colo0', 'buf0']);
    assert.equal((stopped[0]!.counters as { primary: { in: number } }).primary.in, N);
    assert.ok(stopped.every((l) => l.name === 'netrr run' && typeof l.time === 'string' && l.level === 30));
  } finally {
    ctl?.close();
    for (const e of eps) await e.close();
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  }
});

test('the operator log: JSON lines off a terminal, readable lines on one', async () => {
  const chunks: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, done) => (chunks.push(c.toString()), done()) });
  createLogger('netrr run', sink, false).info({ instance: 'colo0', n: 3 }, 'stopped');
  const j = JSON.parse(chunks.join('').trim()) as Record<string, unknown>;
  assert.equal(j.msg, 'stopped');
  assert.equal(j.instance, 'colo0');
  assert.equal(j.name, 'netrr run');
  chunks.length = 0;
  createLogger('netrr run', sink, true).warn({ instance: 'colo0' }, 'slow peer');
  await new Promise((r) => setImmediate(r));
  assert.match(chunks.join(''), /^\d\d:\d\d:\d\d\.\d{3} netrr run WARN: slow peer instance=colo0\n$/);
  assert.equal(readableLine('not json'), 'not json');
});

test('SIGHUP after logrotate moved a capture, then the reopen command: each part in its own whole pcapng; a recorder\'s log-rotate starts its next segment', async () => {
  const d = tmp.sub();
  const cap = join(d, 'bridge.pcapng');
  const log = join(d, 'rec.nlog');
  writeFileSync(join(d, 'netrr.json'), JSON.stringify({ control: `unix:${d}/ctl.sock`, instances: [
    { name: 'br0', kind: 'bridge', a: `unix:${d}/a.sock,server=on`, b: `unix:${d}/b.sock,server=on`, capture: cap },
    { name: 'rec0', kind: 'record', guest: `unix:${d}/g.sock,server=on`, upstream: `unix:${d}/u.sock,server=on`, log },
  ] }));
  const proc = start(process.execPath, [NETRR_BIN, 'run', join(d, 'netrr.json')]);
  const a = createEndpoint(`unix:${d}/a.sock`, { name: 'a' });
  const b = createEndpoint(`unix:${d}/b.sock`, { name: 'b' });
  const g = createEndpoint(`unix:${d}/g.sock`, { name: 'g' });
  const u = createEndpoint(`unix:${d}/u.sock`, { name: 'u' });
  let atB = 0;
  let atU = 0;
  b.onFrame = () => atB++;
  u.onFrame = () => atU++;
  const eps = [a, b, g, u];
  try {
    await waitFor(() => proc.out().includes('"msg":"running"') || proc.child.exitCode !== null, 15_000, 'daemon up');
    for (const e of eps) await e.start();
    await Promise.all(eps.map((e) => e.waitConnected(10_000)));
    const send = async (n: number, from: number): Promise<void> => {
      for (let i = 0; i < n; i++) a.send(buildFrame({ proto: 'udp', payload: `frame ${from + i}` }), 0);
      await waitFor(() => atB === from + n, 10_000, 'frames through');
    };
    const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
    const captured = async (): Promise<number> => ((await ctl.execute('query-status', { instance: 'br0' })) as { capture: { captured: number } }).capture.captured;
    const capturedReach = async (n: number): Promise<void> => {
      const deadline = Date.now() + 5000;
      while ((await captured()) < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    await send(10, 0);
    await capturedReach(10);
    renameSync(cap, `${cap}.1`);
    proc.child.kill('SIGHUP');
    await waitFor(() => proc.out().includes('SIGHUP: files reopened'), 10_000, 'reopened');
    await send(5, 10);
    await capturedReach(5);
    // The same through the control socket (no signal needed).
    renameSync(cap, `${cap}.2`);
    assert.deepEqual(await ctl.execute('reopen', { instance: 'br0' }), { reopened: ['br0'] });
    await send(3, 15);
    // The recorder: 4 frames, an operator's rotation, 2 more.
    let atUBefore = 0;
    const through = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) g.send(buildFrame({ proto: 'udp', payload: `logged ${atU + i}` }), 0);
      await waitFor(() => atU === n + atUBefore, 10_000, 'frames through the recorder');
    };
    await through(4);
    assert.deepEqual(await ctl.execute('log-rotate', { instance: 'rec0' }), { segment: 1, path: `${log}.1`, rotated: true });
    atUBefore = atU;
    await through(2);
    ctl.close();
    proc.child.kill('SIGTERM');
    assert.equal(await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c))), 0, proc.out());
    for (const [file, n] of [[`${cap}.1`, 10], [`${cap}.2`, 5], [cap, 3]] as const) {
      const info = await netrr(['pcap', 'info', '--json', file]);
      assert.equal(info.code, 0, info.stderr);
      const j = JSON.parse(info.stdout) as { packets: number; interfaces: { name: string }[] };
      assert.equal(j.packets, n, file);
      assert.deepEqual(j.interfaces.map((i) => i.name), ['a', 'b'], `${file}: the interfaces again`);
    }
    const v = await netrr(['log', 'verify', log]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.deepEqual(logSegments(log), [log, `${log}.1`]);
  } finally {
    for (const e of eps) await e.close();
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  }
});
