// Replay of heavier guest workloads through slirp, each recorded by
// `netrr record` and replayed into fresh boots with causal and recorded
// pacing: four parallel HTTP downloads, a 2 MB HTTP upload, and a 1 MiB TFTP
// transfer (replayed beside a CPU hog, so that the guest is slower than when
// it was recorded).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { type TestContext, after, test } from 'node:test';
import { recordGuest, replayIntoGuestTwice } from './helpers/guest.ts';
import { Qemu, slirpWorldArgs } from './helpers/qemu.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-replay-loads-');
after(() => tmp.cleanup());

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/** Records `load` through slirp (HTTP server on the host, TFTP from `files`); returns the log and the guest's console. */
async function record(d: string, load: string, handler: http.RequestListener, files: string): Promise<{ log: string; port: number; console: string; close: () => void }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const world = new Qemu(slirpWorldArgs(`${d}/world.sock`, files));
  const log = join(d, 'rec.nrrlog');
  try {
    await world.waitForSockets([`${d}/world.sock`]);
    const console = await recordGuest({ log, sock: `${d}/guest.sock`, upstream: `unix:${d}/world.sock`, task: 'net-load', cmdline: `netrr.port=${port} netrr.load=${load}`, timeoutMs: 150_000 });
    return { log, port, console, close: () => server.close() };
  } finally {
    await world.stop();
  }
}

async function replayBoth(t: TestContext, d: string, log: string, cmdline: string, expect: RegExp[]): Promise<void> {
  for (const pacing of ['causal', 'recorded']) {
    const r = await replayIntoGuestTwice((l) => t.diagnostic(l), pacing, { log, sock: `${d}/${pacing}.sock`, task: 'net-load', cmdline, args: ['--pacing', pacing, '--timeout', '20000'], timeoutMs: 150_000 });
    assert.equal(r.code, 0, `${pacing}: ${r.out}\n${r.serial}`);
    for (const re of expect) assert.match(r.serial, re, `${pacing}: ${r.serial}`);
    const s = JSON.parse(/replay: MATCHED (\{.*\})/.exec(r.out)![1]!) as { injected: number; injectedBytes: number; seconds: number; windowWaits: number; windowWaitsExpired: number; retransmissions: number; streamMatched: number };
    t.diagnostic(`${pacing}: ${s.injected} frames, ${s.injectedBytes} bytes in ${s.seconds} s; ${s.windowWaits} window waits, ${s.windowWaitsExpired} expired, ${s.retransmissions} guest retransmissions, ${s.streamMatched} guest segments matched as a stream`);
  }
}

test('four parallel HTTP downloads replay, each flow on its own window', async (t) => {
  const d = join(tmp.path, 'par');
  mkdirSync(d);
  const file = randomBytes(2 * 1024 * 1024);
  const r = await record(d, 'par', (req, res) => (req.url === '/file.bin' ? res.end(file) : res.writeHead(404).end()), d);
  r.close();
  const lines = [1, 2, 3, 4].map((i) => new RegExp(`PAR-MD5 ${i} ${md5(file)} ${file.length}`));
  for (const re of lines) assert.match(r.console, re, r.console);
  await replayBoth(t, d, r.log, `netrr.port=${r.port} netrr.load=par`, lines);
});

test('a 2 MB HTTP upload replays: the world acknowledges data the live guest has sent', async (t) => {
  const d = join(tmp.path, 'up');
  mkdirSync(d);
  const r = await record(
    d,
    'upload',
    (req, res) => {
      const h = createHash('md5');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => res.end(`${h.digest('hex')} ${n}`));
    },
    d,
  );
  r.close();
  const sent = /UPLOAD-SENT ([0-9a-f]{32}) (\d+)/.exec(r.console);
  assert.ok(sent !== null, r.console);
  assert.ok(Number(sent[2]) > 2_000_000, sent[0]);
  const reply = new RegExp(`UPLOAD-REPLY ${sent[1]} ${sent[2]}`);
  assert.match(r.console, reply, 'the server got every byte');
  // The reply in a replay is the recorded one; that it arrives says the world's ACKs and answer followed the live upload.
  await replayBoth(t, d, r.log, `netrr.port=${r.port} netrr.load=upload`, [new RegExp(`UPLOAD-SENT ${sent[1]} ${sent[2]}`), reply]);
});

test('a 1 MiB TFTP transfer replays, also with the host loaded by a CPU hog', async (t) => {
  const d = join(tmp.path, 'tftp');
  mkdirSync(d);
  const file = randomBytes(1024 * 1024);
  writeFileSync(join(d, 'tftp.bin'), file);
  const r = await record(d, 'tftp', (_q, res) => res.writeHead(404).end(), d);
  r.close();
  const line = new RegExp(`TFTP-MD5 ${md5(file)} ${file.length}`);
  assert.match(r.console, line, r.console);
  // Both cores busy beside the guest: it runs slower than when it was recorded.
  const hogs = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  try {
    await replayBoth(t, d, r.log, `netrr.port=${r.port} netrr.load=tftp`, [line]);
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
  }
});
