// netrr replay streams its log: a log many times larger than the lookahead
// replays to a scripted guest (answering each world frame with the recorded
// guest frame) with the engine never holding more than about twice the
// lookahead. A damaged log is refused before the guest sees anything.

import assert from 'node:assert/strict';
import { existsSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeRecord } from '../src/codec/qemu-framing.ts';
import { DIR_FROM_PORT } from '../src/codec/netrr-log.ts';
import { LogWriter } from '../src/io/log-writer.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { RawPeer, waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, netrr, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-replay-stream-');
after(() => tmp.cleanup());

const G = { src: '52:54:00:12:34:56', dst: '52:55:0a:00:02:02', ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
const W = { src: '52:55:0a:00:02:02', dst: '52:54:00:12:34:56', ipSrc: '10.0.2.2', ipDst: '10.0.2.15' };
const world = (i: number): Uint8Array => buildFrame({ ...W, proto: 'udp', srcPort: 7, dstPort: 5000, payload: `w${i}`.padEnd(1000, '.') });
const guest = (i: number): Uint8Array => buildFrame({ ...G, proto: 'udp', srcPort: 5000, dstPort: 7, payload: `g${i}`.padEnd(1000, '.') });

const N = 8000;
const LOOKAHEAD_BYTES = 256 * 1024;

async function writeLog(path: string): Promise<void> {
  const w = await LogWriter.create(path);
  for (let i = 0; i < N; i++) {
    w.append(1, DIR_FROM_PORT, 0, world(i));
    w.append(0, DIR_FROM_PORT, 0, guest(i));
  }
  await w.close();
}

test(`replay streams a ${N * 2}-frame log (about 17 MB) through a ${LOOKAHEAD_BYTES / 1024} KiB lookahead: matched, bounded`, async () => {
  const log = join(tmp.path, 'big.nrrlog');
  await writeLog(log);
  const sock = join(tmp.path, 'big.sock');
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${sock},server=on`, '--lookahead-bytes', String(LOOKAHEAD_BYTES), '--timeout', '30000']);
  await waitFor(() => existsSync(sock) || rp.child.exitCode !== null, 10_000, 'replay socket');
  const peer = await RawPeer.connect({ path: sock });
  // The scripted guest: answer world frame i with recorded guest frame i.
  let answered = 0;
  const v = new PacketView();
  const onData = (): void => {
    while (answered < peer.frames.length) {
      const f = peer.frames[answered]!;
      v.decode(f);
      const i = Number(/^w(\d+)/.exec(new TextDecoder().decode(f.subarray(v.payloadOffset, v.payloadOffset + 12)))![1]);
      assert.equal(i, answered, 'world frames arrive in log order');
      peer.sock.write(encodeRecord(guest(i)));
      answered++;
      peer.frames[answered - 1] = new Uint8Array(0); // keep the test's own memory flat too
    }
  };
  peer.sock.on('data', () => setImmediate(onData));
  await waitFor(() => rp.child.exitCode !== null, 120_000, 'replay exit');
  assert.equal(rp.child.exitCode, 0, rp.out());
  assert.equal(answered, N);
  const summary = JSON.parse(/replay: MATCHED (\{.*\})/.exec(rp.out())![1]!) as { guestFramesMatched: number; injected: number; injectDropped: number; peakLogBytesHeld: number };
  assert.equal(summary.guestFramesMatched, N);
  console.log(`peak log bytes held: ${summary.peakLogBytesHeld} of ${N * (world(0).length + guest(0).length)}`);
  assert.equal(summary.injected, N);
  assert.equal(summary.injectDropped, 0, 'every injected frame reached the guest');
  const logFrameBytes = N * (world(0).length + guest(0).length);
  assert.ok(summary.peakLogBytesHeld <= 2 * LOOKAHEAD_BYTES + 2 * 1024 * 1024, `peak ${summary.peakLogBytesHeld} bytes held`);
  assert.ok(summary.peakLogBytesHeld < logFrameBytes / 4, `peak ${summary.peakLogBytesHeld} of ${logFrameBytes} bytes`);
  peer.sock.destroy();
});

test('replay refuses a torn log before the guest sees a frame, naming the repair', async () => {
  const log = join(tmp.path, 'torn.nrrlog');
  await writeLog(log);
  truncateSync(log, statSync(log).size - 700);
  const r = await netrr(['replay', '--log', log, '--guest', `unix:${join(tmp.path, 'torn.sock')},server=on`]);
  assert.equal(r.code, 65, r.stdout + r.stderr);
  assert.match(r.stderr, /ends inside a record .*netrr log verify --repair/);
  assert.equal(existsSync(join(tmp.path, 'torn.sock')), false, 'no socket was opened');
});

test('replay under a control socket: query-counters shows progress; SIGINT ends it INTERRUPTED, exit 130, with the summary so far', async () => {
  const log = join(tmp.path, 'ctl.nrrlog');
  await writeLog(log);
  const sock = join(tmp.path, 'ctl.sock');
  const ctlPath = join(tmp.path, 'ctl-ctl.sock');
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${sock},server=on`, '--control', `unix:${ctlPath}`, '--timeout', '60000']);
  const peer = await RawPeer.connect({ path: sock });
  // Answer only the first 100 world frames, then go quiet: the replay waits.
  let answered = 0;
  peer.sock.on('data', () =>
    setImmediate(() => {
      while (answered < Math.min(100, peer.frames.length)) peer.sock.write(encodeRecord(guest(answered++)));
    }),
  );
  const { ControlClient } = await import('../src/control/control-client.ts');
  const ctl = await ControlClient.connect(`unix:${ctlPath}`);
  let tree: { matched?: number; injected?: number; guest?: { rxFrames: number } } = {};
  for (let k = 0; k < 1000 && tree.matched !== 100; k++) {
    tree = (await ctl.execute('query-counters')) as typeof tree;
    if (tree.matched !== 100) await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(tree.matched, 100);
  assert.equal(tree.guest?.rxFrames, 100);
  ctl.close();
  rp.child.kill('SIGINT');
  await waitFor(() => rp.child.exitCode !== null, 20_000, 'replay exit');
  assert.equal(rp.child.exitCode, 130, 'interrupted: a status of its own, not a divergence');
  const summary = JSON.parse(/replay: INTERRUPTED (\{.*\})/.exec(rp.out())![1]!) as { guestFramesMatched: number };
  assert.equal(summary.guestFramesMatched, 100);
  peer.sock.destroy();
});

test('with no guest yet, replay says it is waiting and for what; SIGINT then ends it INTERRUPTED (exit 130) with a summary', async () => {
  const log = join(tmp.path, 'wait.nrrlog');
  await writeLog(log);
  const sock = join(tmp.path, 'wait.sock');
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${sock},server=on`]);
  await waitFor(() => rp.out().includes('waiting for the guest'), 10_000, 'the waiting line');
  assert.match(rp.out(), new RegExp(`netrr replay: waiting for the guest to connect on unix:${sock}`));
  rp.child.kill('SIGINT');
  await waitFor(() => rp.child.exitCode !== null, 10_000, 'replay exit');
  assert.equal(rp.child.exitCode, 130, rp.out());
  assert.match(rp.out(), /replay: INTERRUPTED \{.*"guestFramesMatched":0/);
});

test('a guest that disconnects mid-replay is reported when it leaves: GUEST-DISCONNECTED, exit 1, long before the timeout', async () => {
  const log = join(tmp.path, 'left.nrrlog');
  await writeLog(log);
  const sock = join(tmp.path, 'left.sock');
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${sock},server=on`, '--timeout', '600000']);
  const peer = await RawPeer.connect({ path: sock });
  let answered = 0;
  peer.sock.on('data', () =>
    setImmediate(() => {
      while (answered < Math.min(50, peer.frames.length)) peer.sock.write(encodeRecord(guest(answered++)), () => {
        if (answered === 50) peer.sock.end();
      });
    }),
  );
  await waitFor(() => rp.child.exitCode !== null, 20_000, 'replay exit (the timeout is 10 minutes)');
  assert.equal(rp.child.exitCode, 1, rp.out());
  assert.match(rp.out(), /netrr replay: the guest disconnected mid-replay: \{"afterMs":\d+,"guestFramesMatched":50/);
  const summary = JSON.parse(/replay: GUEST-DISCONNECTED (\{.*\})/.exec(rp.out())![1]!) as { matched: boolean; guestFramesMatched: number; guestDisconnectedAfterMs: number };
  assert.equal(summary.matched, false);
  assert.equal(summary.guestFramesMatched, 50);
  assert.ok(summary.guestDisconnectedAfterMs >= 0);
});

test('a report that cannot be written is said on stderr with its code and counted in the summary; the replay still ends with its verdict', async () => {
  const log = join(tmp.path, 'rep.nrrlog');
  await writeLog(log);
  const sock = join(tmp.path, 'rep.sock');
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', log, '--guest', `unix:${sock},server=on`, '--report', tmp.path]);
  const peer = await RawPeer.connect({ path: sock });
  // The guest answers the first world frame with the wrong frame: a divergence to report.
  peer.sock.on('data', () => setImmediate(() => peer.frames.length > 0 && peer.sock.write(encodeRecord(guest(7)))));
  await waitFor(() => rp.child.exitCode !== null, 30_000, 'replay exit');
  assert.equal(rp.child.exitCode, 1, rp.out());
  assert.match(rp.out(), /^divergence: /m);
  assert.match(rp.out(), /netrr replay: REPORT_ERROR: .*EISDIR.* \[ERR_IO\]/);
  const summary = JSON.parse(/replay: DIVERGED (\{.*\})/.exec(rp.out())![1]!) as { reportErrors: number };
  assert.equal(summary.reportErrors, 1);
  peer.sock.destroy();
});
