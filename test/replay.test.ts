// Record a real guest that gets its address by DHCP, pings, downloads a file
// over TCP (HTTP from a server on the host, through slirp) and fetches one
// over TFTP (slirp's server), then replay the log into fresh boots of the same guest with no
// upstream at all:
//  1. the same guest: it receives the recorded files (same checksums on its
//     console, though both files changed on disk after recording), netrr
//     learns the boot's own ports/ISNs/timestamps/echo data and reports no
//     divergence (exit 0);
//  2. a guest asking for something else (another port): replay stops at the
//     first divergent frame, names the field, writes a pcapng tshark opens.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { recordGuest, replayIntoGuest } from './helpers/guest.ts';
import { Qemu, slirpWorldArgs } from './helpers/qemu.ts';
import { run, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir('netrr-replay-');
after(() => tmp.cleanup());

async function replayInto(d: string, name: string, log: string, cmdline: string): Promise<{ serial: string; out: string; code: number | null; pcap: string; report: string }> {
  const pcap = join(d, `${name}.pcapng`);
  const report = join(d, `${name}.jsonl`);
  const rp = await replayIntoGuest({ log, sock: `${d}/${name}.sock`, task: 'dhcp-fetch', cmdline, args: ['--timeout', '15000', '--report', report, '--report-pcap', pcap] });
  return { ...rp, pcap, report };
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

test('record a guest (ping, HTTP download, TFTP fetch), replay into fresh boots: same guest gets the recorded files; a different request stops at the first divergence', async () => {
  const d = join(tmp.path, 'r');
  mkdirSync(d);
  const files = join(d, 'files');
  mkdirSync(files);
  let httpFile = randomBytes(30000);
  const tftpFile = randomBytes(5000);
  writeFileSync(join(files, 'tftp.bin'), tftpFile);
  const server = http.createServer((req, res) => {
    if (req.url === '/file.bin') res.end(httpFile);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const world = new Qemu(slirpWorldArgs(`${d}/world.sock`, files));
  const log = join(d, 'rec.nrrlog');
  const recordedHttp = md5(httpFile);
  const recordedTftp = md5(tftpFile);
  try {
    await world.waitForSockets([`${d}/world.sock`]);
    const recorded = await recordGuest({ log, sock: `${d}/guest.sock`, upstream: `unix:${d}/world.sock`, task: 'dhcp-fetch', cmdline: `netrr.port=${port}` });
    assert.match(recorded, /DHCP-OK 10\.0\.2\.15/, recorded);
    assert.match(recorded, new RegExp(`HTTP-MD5 ${recordedHttp} 30000`), recorded);
    assert.match(recorded, new RegExp(`TFTP-MD5 ${recordedTftp} 5000`), recorded);
  } finally {
    await world.stop();
  }
  // The world changes after the recording; replay must still deliver what was recorded.
  httpFile = randomBytes(30000);
  writeFileSync(join(files, 'tftp.bin'), randomBytes(5000));
  server.close();

  const same = await replayInto(d, 'same', log, `netrr.port=${port}`);
  assert.equal(same.code, 0, same.out + same.serial);
  assert.match(same.serial, /DHCP-OK 10\.0\.2\.15/, 'the recorded DHCP lease, with this boot\'s own xid');
  assert.match(same.serial, /PING-OK/);
  assert.match(same.serial, new RegExp(`HTTP-MD5 ${recordedHttp} 30000`), 'the recorded download, not the changed file');
  assert.match(same.serial, new RegExp(`TFTP-MD5 ${recordedTftp} 5000`), 'the recorded TFTP file');
  const summary = JSON.parse(/replay: MATCHED (\{.*\})/.exec(same.out)![1]!) as { divergences: number; guestFramesMatched: number; learned: string[]; injected: number };
  assert.equal(summary.divergences, 0);
  assert.ok(summary.guestFramesMatched >= 10);
  assert.ok(summary.learned.some((l) => l.startsWith('tcp port')), 'the HTTP connection was learned');
  assert.ok(summary.learned.some((l) => l.startsWith('udp port')), "the TFTP client's port was learned");
  assert.ok(summary.learned.some((l) => l.startsWith('icmp echo data')));
  assert.ok(summary.learned.some((l) => l.startsWith('transaction ids')), 'the DHCP xid was learned');

  // A different request: the guest connects to another port.
  const other = await replayInto(d, 'other', log, `netrr.port=${port + 1}`);
  assert.equal(other.code, 1, other.out);
  assert.match(other.out, /replay: DIVERGED/);
  const div = JSON.parse(readFileSync(other.report, 'utf8').trim().split('\n')[0]!) as { kind: string; field: string; seq: number; expected: { summary: string }; actual: { summary: string } };
  assert.equal(div.kind, 'mismatch');
  assert.equal(div.field, 'tcp.dport', JSON.stringify(div));
  assert.match(div.expected.summary, new RegExp(`> ${port} flags 0x2 `));
  assert.match(div.actual.summary, new RegExp(`> ${port + 1} flags 0x2 `));
  const t = await run('tshark', ['-r', other.pcap, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'tcp.dstport', '-e', 'frame.comment']);
  assert.equal(tsharkStderr(t.stderr), '');
  const rows = t.stdout.trim().split('\n').map((r) => r.split('\t'));
  assert.deepEqual(rows.map((r) => [r[0], Number(r[1])]), [['expected', port], ['actual', port + 1]]);
  assert.match(rows[0]![2]!, /first difference in tcp\.dport/);
});
