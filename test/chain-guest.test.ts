// Remus-style output commit with a real guest: the guest's egress goes
// through `netrr chain … -f buffer` to QEMU's slirp, a test controller
// begins and commits epochs every 20-200 ms, and the guest's DHCP, a 1 MB
// HTTP download and a TFTP fetch complete with the right checksums while
// its output is held. Two dumps, one before the buffer and one after it,
// show every guest frame leaving exactly once, in order; and before every
// commit the dump after the buffer holds exactly what earlier commits
// released: nothing leaves between commits (a causal check, no clocks).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import { bootGuest, streamNic, waitTask } from './helpers/guest.ts';
import { Qemu, slirpWorldArgs } from './helpers/qemu.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, netrr, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-chain-guest-');
after(() => tmp.cleanup());
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/** Frames of one interface of a dump, as hex. */
async function dumpFrames(file: string, iface: number): Promise<{ hex: string }[]> {
  const r = await netrr(['pcap', 'cat', '--json', '--hex', file]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { interface: number; data: string })
    .filter((x) => x.interface === iface)
    .map((x) => ({ hex: x.data }));
}

test('a real guest downloads 1 MB over HTTP and fetches by TFTP through an epoch buffer committed every 20-200 ms; nothing leaves before its commit', async () => {
  const d = join(tmp.path, 'g');
  mkdirSync(d);
  const files = join(d, 'files');
  mkdirSync(files);
  const httpFile = randomBytes(1024 * 1024);
  const tftpFile = randomBytes(8000);
  writeFileSync(join(files, 'tftp.bin'), tftpFile);
  const server = http.createServer((req, res) => (req.url === '/file.bin' ? res.end(httpFile) : res.writeHead(404).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const world = new Qemu(slirpWorldArgs(`${d}/world.sock`, files));
  let chain: ReturnType<typeof start> | null = null;
  let ctl: ControlClient | null = null;
  let commits = 0;
  let released = 0;
  let running = true;
  /** Frames that passed the dump after the buffer, minus what the commits so far released: must stay 0. */
  const leaks: number[] = [];
  try {
    await world.waitForSockets([`${d}/world.sock`]);
    // Filters head → tail: out-dump, buffer, in-dump. Guest frames walk tail → head: in-dump, buffer, out-dump.
    chain = start(process.execPath, [NETRR_BIN, 'chain', '--guest', `unix:${d}/guest.sock,server=on`, '--upstream', `unix:${d}/world.sock`, '--control', `unix:${d}/ctl.sock`,
      '-f', `dump,id=out,queue=rx,file=${d}/out.pcapng`, '-f', 'buffer,id=ob,queue=rx', '-f', `dump,id=in,file=${d}/in.pcapng`]);
    await waitFor(() => existsSync(`${d}/guest.sock`) && existsSync(`${d}/ctl.sock`) || chain!.child.exitCode !== null, 10_000, 'chain sockets');
    ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
    const g = bootGuest('dhcp-fetch', streamNic(`${d}/guest.sock`), `netrr.port=${port}`);
    const outCaptured = async (): Promise<number> => ((await ctl!.execute('query-filters')) as { id: string; captured: number }[]).find((x) => x.id === 'out')!.captured;
    const commit = async (): Promise<void> => {
      leaks.push((await outCaptured()) - released);
      const { closed } = (await ctl!.execute('epoch-begin')) as { closed: number };
      released += ((await ctl!.execute('epoch-commit', { epoch: closed })) as { released: number }).released;
      commits++;
    };
    const controller = (async () => {
      while (running) {
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 180));
        await commit();
      }
    })();
    const serial = await waitTask(g, 150_000);
    running = false;
    await controller;
    assert.match(serial, /DHCP-OK 10\.0\.2\.15/, serial);
    assert.match(serial, new RegExp(`HTTP-MD5 ${md5(httpFile)} ${httpFile.length}`), serial);
    assert.match(serial, new RegExp(`TFTP-MD5 ${md5(tftpFile)} ${tftpFile.length}`), serial);
    // Whatever the guest sent last is still held: commit it, then stop.
    await commit();
    assert.equal(await outCaptured(), released, 'after the last commit the dump holds exactly what was released');
    const f = ((await ctl.execute('query-filters')) as Record<string, unknown>[]).find((x) => x.id === 'ob')!;
    assert.equal(f.backlogFrames, 0);
    assert.deepEqual(f.dropped, { overlimit: 0, hardLimit: 0, aborted: 0 });
    assert.ok(commits >= 10, `${commits} commits`);
    assert.deepEqual(leaks.filter((x) => x !== 0), [], 'no guest frame passed the buffer between commits');
    await ctl.execute('quit');
    await waitFor(() => chain!.child.exitCode !== null, 15_000, 'chain exits');
    assert.equal(chain.child.exitCode, 0, chain.out());
  } finally {
    ctl?.close();
    if (chain !== null && chain.child.exitCode === null) chain.child.kill('SIGKILL');
    await world.stop();
    server.close();
  }
  // Interface 0 of each dump holds the guest's frames.
  const inFrames = await dumpFrames(`${d}/in.pcapng`, 0);
  const outFrames = await dumpFrames(`${d}/out.pcapng`, 0);
  // The guest's GRO acknowledges many segments at once, so its own frames are few; toward it flowed the megabyte.
  const toGuest = await dumpFrames(`${d}/in.pcapng`, 1);
  assert.ok(toGuest.length > 700, `${toGuest.length} frames toward the guest`);
  assert.ok(inFrames.length > 40, `${inFrames.length} guest frames`);
  assert.deepEqual(outFrames.map((x) => x.hex), inFrames.map((x) => x.hex), 'every guest frame left once, in order');
  assert.equal(outFrames.length, released, 'the commits released exactly what left');
});
