// passt as the recorder's upstream (Debian's passt speaks QEMU's stream
// framing on a unix socket). passt runs in a network namespace the test
// creates, copying its guest's addressing from a veth there (192.0.2.2/24,
// gateway 192.0.2.1) and mapping the gateway address to the namespace's
// loopback, where dnsmasq (DNS, TFTP) and an HTTP server listen: nothing
// leaves the machine. passt's own DHCP gives the guest its lease.
// The guest is recorded through passt, then replayed into fresh boots, with
// causal and with recorded pacing.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bootGuest, replayIntoGuest, streamNic, waitTask } from './helpers/guest.ts';
import { Netns } from './helpers/netns.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, netrr, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-passt-');
after(() => tmp.cleanup());

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

test('record a real guest through passt (its DHCP, DNS and TCP/UDP to the gateway), replay into fresh boots with no upstream (causal and recorded pacing): same files', async () => {
  const d = join(tmp.path, 'p');
  const files = join(d, 'files');
  const sockDir = join(d, 'sock');
  mkdirSync(files, { recursive: true });
  mkdirSync(sockDir);
  // passt drops to nobody before it creates its socket; dnsmasq reads the files.
  for (const p of [tmp.path, d, files]) chmodSync(p, 0o755);
  chmodSync(sockDir, 0o1777);
  const httpFile = randomBytes(30000);
  const tftpFile = randomBytes(5000);
  writeFileSync(join(files, 'file.bin'), httpFile, { mode: 0o644 });
  writeFileSync(join(files, 'tftp.bin'), tftpFile, { mode: 0o644 });
  const port = 8080;
  const log = join(d, 'rec.nrrlog');
  const passtSock = join(sockDir, 'passt.sock');
  const ns = await Netns.create();
  try {
    await ns.addUplink('192.0.2.2/24', '192.0.2.1');
    const dnsLog = await ns.dnsmasq({ ifname: 'lo', dir: d, hosts: { 'files.netrr.test': '192.0.2.1' }, tftpRoot: files });
    await ns.httpServer('127.0.0.1', port, join(files, 'file.bin'));
    const passt = ns.spawn('passt', ['-f', '-s', passtSock, '-D', '192.0.2.1']);
    await waitFor(() => existsSync(passtSock) || passt.child.exitCode !== null, 10_000, 'passt socket');
    assert.equal(passt.child.exitCode, null, passt.out());
    const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/guest.sock,server=on`, '--upstream', `unix:${passtSock}`, '--log', log]);
    await waitFor(() => existsSync(`${d}/guest.sock`) || rec.child.exitCode !== null, 10_000, 'recorder socket');
    const g = bootGuest('dns-fetch', streamNic(`${d}/guest.sock`), `netrr.port=${port}`);
    const serial = await waitTask(g, 90_000);
    assert.match(serial, /DHCP-OK 192\.0\.2\.2/, serial + passt.out());
    assert.match(serial, /DNS-OK 192\.0\.2\.1/, serial + dnsLog());
    assert.match(serial, new RegExp(`HTTP-MD5 ${md5(httpFile)} 30000`), serial);
    assert.match(serial, new RegExp(`TFTP-MD5 ${md5(tftpFile)} 5000`), serial);
    rec.child.kill('SIGTERM');
    await waitFor(() => rec.child.exitCode !== null, 10_000, 'recorder exit');
    assert.equal(rec.child.exitCode, 0, rec.out());
    assert.match(dnsLog(), /query\[A\] files\.netrr\.test from 127\.0\.0\.1/, 'the query reached dnsmasq through passt');
  } finally {
    await ns.destroy();
  }
  const v = await netrr(['log', 'verify', log]);
  assert.equal(v.code, 0, v.stdout + v.stderr);

  // Causal pacing (the default), then recorded pacing (original delays after each guest frame).
  for (const pacing of ['causal', 'recorded']) {
    const rp = await replayIntoGuest({ log, sock: `${d}/replay-${pacing}.sock`, task: 'dns-fetch', cmdline: `netrr.port=${port}`, args: ['--timeout', '15000', '--pacing', pacing] });
    const serial = rp.serial;
    assert.equal(rp.code, 0, `${pacing}: ${rp.out}${serial}`);
    assert.match(serial, /DHCP-OK 192\.0\.2\.2/);
    assert.match(serial, /DNS-OK 192\.0\.2\.1/);
    assert.match(serial, new RegExp(`HTTP-MD5 ${md5(httpFile)} 30000`));
    assert.match(serial, new RegExp(`TFTP-MD5 ${md5(tftpFile)} 5000`));
    assert.match(rp.out, /replay: MATCHED .*transaction ids \(DHCP xid \/ DNS id\): 2/);
  }
});
