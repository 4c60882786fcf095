// Issue 8 items 3 and 4 with real processes: under `netrr record`'s default
// log-first order every frame the far side received is in the log, however
// often netrr is killed with SIGKILL; and a full disk stops the recording
// loudly (exit 74, ERR_LOG_WRITE, nothing forwarded unlogged) with a log that
// `verify --repair` closes.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { logSegments, scanSegment } from '../src/io/log-file.ts';
import type { FrameEndpoint } from '../src/io/frame-endpoint.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { rawServer, waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, netrr, run, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-order-');
after(() => tmp.cleanup());
const dir = tmp.sub;

const frame = (i: number): Uint8Array => buildFrame({ proto: 'udp', srcPort: 3000 + (i % 64), payload: `#${i}#`.padEnd(100 + (i % 900), '.') });

/** Sends numbered frames on `ep` until stopped, respecting its high-water mark. */
function stream(ep: FrameEndpoint): { stop: () => void; sent: () => number } {
  let i = 0;
  let stopped = false;
  void (async () => {
    while (!stopped) {
      // At most 2000 a round, so the loop yields even if the endpoint never pushes back.
      for (let k = 0; k < 2000 && !stopped && ep.writable; k++) ep.send(frame(i++), 0);
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return { stop: () => (stopped = true), sent: () => i };
}

/** Every frame record of a (possibly torn) log, in sequence order. */
async function logged(path: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const seg of logSegments(path)) await scanSegment(seg, (r) => void out.push(Buffer.from(r.payload)));
  return out;
}

test('log-first: SIGKILL at random moments, 12 times; every frame the upstream received is in the log', async () => {
  for (let round = 0; round < 12; round++) {
    const d = dir();
    const sink = await rawServer(`${d}/up.sock`);
    const log = join(d, 'k.nrrlog');
    const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/up.sock`, '--log', log, '--sync', 'none', '--control', `unix:${d}/ctl.sock`]);
    const guest = createEndpoint(`unix:${d}/g.sock`);
    let s: ReturnType<typeof stream> | null = null;
    try {
      await waitFor(() => existsSync(`${d}/g.sock`) && sink.peers.length === 1, 10_000, 'recorder up');
      await guest.start();
      await guest.waitConnected(5000);
      s = stream(guest);
      const target = 500 + Math.floor(Math.random() * 30_000);
      try {
        await waitFor(() => (sink.peers[0]?.frames.length ?? 0) >= target, 30_000, `${target} frames through`);
      } catch (e) {
        const st = await netrr(['control', `unix:${d}/ctl.sock`, 'query-status']);
        throw new Error(`${(e as Error).message}: ${sink.peers[0]?.frames.length} through, ${s.sent()} sent; recorder: ${st.stdout}`);
      }
      rec.child.kill('SIGKILL');
      await waitFor(() => rec.child.signalCode !== null, 5000, 'killed');
      // Let the sink read what the kernel still held for it.
      await waitFor(() => sink.peers[0]!.closed, 5000, 'upstream closed');
      const received = sink.peers[0]!.frames;
      const inLog = await logged(log);
      assert.ok(inLog.length >= received.length, `round ${round}: ${received.length} delivered, only ${inLog.length} logged`);
      received.forEach((f, i) => assert.ok(inLog[i]!.equals(f), `round ${round}: delivered frame ${i} is the logged record ${i}`));
    } finally {
      s?.stop();
      if (rec.child.exitCode === null && rec.child.signalCode === null) rec.child.kill('SIGKILL');
      await guest.close();
      await sink.close();
    }
  }
});

test('a full disk (a 2 MB tmpfs) stops the recording: exit 74 with ERR_LOG_WRITE, nothing delivered that is not logged, repairable log', async (t) => {
  const d = dir();
  const mnt = join(d, 'small');
  mkdirSync(mnt);
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'netrr-test', mnt]);
  assert.equal(m.code, 0, `mount tmpfs: ${m.stderr}`);
  t.after(async () => {
    // Lazily, so that a file still open somewhere cannot leave the mount behind.
    const u = await run('umount', ['-l', mnt]);
    assert.equal(u.code, 0, u.stderr);
  });
  const sink = await rawServer(`${d}/up.sock`);
  const log = join(mnt, 'full.nrrlog');
  const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/g.sock,server=on`, '--upstream', `unix:${d}/up.sock`, '--log', log, '--control', `unix:${d}/ctl.sock`]);
  const guest = createEndpoint(`unix:${d}/g.sock`);
  try {
    await waitFor(() => existsSync(`${d}/g.sock`) && sink.peers.length === 1, 10_000, 'recorder up');
    await guest.start();
    await guest.waitConnected(5000);
    const s = stream(guest);
    t.after(() => {
      s.stop();
      if (rec.child.exitCode === null && rec.child.signalCode === null) rec.child.kill('SIGKILL');
    });
    await waitFor(() => rec.child.exitCode !== null, 60_000, 'the recorder stops by itself');
    s.stop();
    assert.equal(rec.child.exitCode, 74, rec.out());
    const lines = rec.out().trim().split('\n');
    assert.equal(lines.length, 1, rec.out());
    assert.match(lines[0]!, /^netrr: log .*full\.nrrlog: no space left on the device; the first \d+ records are safe in the log \(netrr log verify --repair .*\) \[ERR_LOG_WRITE\]$/);
    await waitFor(() => sink.peers[0]!.closed, 5000, 'upstream closed');
    const received = sink.peers[0]!.frames;
    assert.ok(received.length > 1000, `${received.length} frames went through before the disk filled`);
    assert.ok(s.sent() > received.length, 'the guest sent more than went through');
    const inLog = await logged(log);
    assert.ok(inLog.length >= received.length, `${received.length} delivered, ${inLog.length} logged`);
    received.forEach((f, i) => assert.ok(inLog[i]!.equals(f), `delivered frame ${i} is logged record ${i}`));
    const v = await netrr(['log', 'verify', log]);
    assert.notEqual(v.code, 0, 'a log cut by a full disk is not reported sound');
    const r = await netrr(['log', 'verify', '--repair', log]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const again = await netrr(['log', 'verify', log]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
  } finally {
    await guest.close();
    await sink.close();
  }
});
