// The tap endpoint against a real Linux tap device in a network namespace the
// test creates, with the kernel's own ARP and ICMP answering:
//  - frames both ways through `netrr bridge`, without and with the vnet
//    header (12-byte tap header; 10-byte and absent headers from the peer are
//    normalised by the helper);
//  - a namespace that does not exist gives a clear error and a retry;
//  - a real guest recorded with the tap as its upstream, its world being
//    dnsmasq (DHCP, DNS, TFTP) and an HTTP server in the namespace, then
//    replayed into a fresh boot: same files, the DHCP xid and DNS id this
//    boot chose are learned, TFTP's fresh server port is followed.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeRecord } from '../src/codec/qemu-framing.ts';
import { verifyL4Checksum } from '../src/packet/checksum.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { bootGuest, replayIntoGuest, streamNic, waitTask } from './helpers/guest.ts';
import { Netns } from './helpers/netns.ts';
import { RawPeer, waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, netrr, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-tap-');
after(() => tmp.cleanup());

const PEER_MAC = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];

function arpRequest(senderIp: number[], targetIp: number[]): Uint8Array {
  return Uint8Array.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...PEER_MAC, 0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, ...PEER_MAC, ...senderIp, 0, 0, 0, 0, 0, 0, ...targetIp,
    ...new Array<number>(18).fill(0),
  ]);
}

async function stopProc(p: ReturnType<typeof start>): Promise<void> {
  if (p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  await waitFor(() => p.child.exitCode !== null, 10_000, 'netrr exit');
}

for (const vnet of [false, true]) {
  test(`tap endpoint: the kernel answers ARP and ping through netrr bridge (vnet header ${vnet ? 'on' : 'off'}), counted both ways`, async () => {
    const ns = await Netns.create();
    const sock = join(tmp.path, `bridge-${vnet}.sock`);
    const ctl = join(tmp.path, `bridge-${vnet}.ctl`);
    const opt = vnet ? ',vnet-hdr=on' : '';
    let br: ReturnType<typeof start> | null = null;
    try {
      await ns.addTap('ntap0', '10.213.0.1/24', vnet);
      br = start(process.execPath, [NETRR_BIN, 'bridge', '--a', `unix:${sock},server=on${opt}`, '--b', `tap:ntap0,netns=${ns.name}${opt}`, '--control', `unix:${ctl}`]);
      await waitFor(() => existsSync(sock) || br!.child.exitCode !== null, 10_000, 'bridge socket');
      // The helper opens the tap asynchronously: frames sent before that are dropped (noPeer), so wait.
      await waitFor(() => existsSync(ctl), 10_000, 'control socket');
      for (let t0 = Date.now(); ; ) {
        const st = JSON.parse((await netrr(['control', `unix:${ctl}`, 'query-status'])).stdout) as { endpoints: { connected: boolean }[] };
        if (st.endpoints[1]!.connected) break;
        if (Date.now() - t0 > 10_000) assert.fail('the tap endpoint never connected');
        await new Promise((r) => setTimeout(r, 50));
      }
      const peer = await RawPeer.connect({ path: sock }, vnet);
      // With the header on, send it in the tap's 12-byte form, in the 10-byte form and not at all.
      const send = (frame: Uint8Array, hdr: number): Promise<void> =>
        peer.write(vnet ? encodeRecord(Uint8Array.from([...new Array<number>(hdr).fill(0), ...frame]), true, hdr) : encodeRecord(frame));
      const frameOf = (i: number): Uint8Array => peer.frames[i]!.subarray(vnet ? peer.vnet[i]! : 0);
      const find = (pred: (v: PacketView) => boolean): number => peer.frames.findIndex((_, i) => pred(new PacketView().decode(frameOf(i))));

      await send(arpRequest([10, 213, 0, 2], [10, 213, 0, 1]), 12);
      await waitFor(() => find((v) => v.etherType === 0x0806 && v.buf[21] === 2) >= 0, 10_000, 'ARP reply');
      const arp = frameOf(find((v) => v.etherType === 0x0806 && v.buf[21] === 2));
      assert.deepEqual([...arp.subarray(0, 6)], PEER_MAC, 'the reply is addressed to the peer');
      assert.deepEqual([...arp.subarray(28, 32)], [10, 213, 0, 1], 'from the tap address');
      const tapMac = [...arp.subarray(6, 12)].map((b) => b.toString(16).padStart(2, '0')).join(':');

      const hdrs = vnet ? [12, 10, 0] : [0, 0, 0];
      for (let i = 0; i < 3; i++) {
        const echo = buildFrame({ src: '52:54:00:ab:cd:ef', dst: tapMac, ipSrc: '10.213.0.2', ipDst: '10.213.0.1', proto: 'icmp', icmpType: 8, icmpId: 0x4242 + i, payload: `netrr tap ping ${i}` });
        await send(echo, hdrs[i]!);
        await waitFor(() => find((v) => v.ipProto === 1 && v.icmpType === 0 && v.icmpId === 0x4242 + i) >= 0, 10_000, `echo reply ${i}`);
        const k = find((v) => v.ipProto === 1 && v.icmpType === 0 && v.icmpId === 0x4242 + i);
        const reply = new PacketView().decode(frameOf(k));
        assert.equal(verifyL4Checksum(reply), true, 'a whole, checksummed frame (no offloads)');
        assert.equal(new TextDecoder().decode(reply.buf.subarray(reply.payloadOffset)), `netrr tap ping ${i}`);
        if (vnet) {
          assert.equal(peer.vnet[k], 12, 'the tap\'s header travels with the frame');
          assert.equal(peer.frames[k]![1], 0, 'gso_type none');
        }
      }
      // Larger than a tap takes (64 KiB + header): refused and counted before the helper, which keeps running.
      await send(new Uint8Array(66_000), vnet ? 12 : 0);
      type Status = { endpoints: { peer?: string; counters: { rxFrames: number; txFrames: number; connects: number; txDrops: Record<string, number> } }[] };
      let st: Status;
      for (let t0 = Date.now(); ; ) {
        st = JSON.parse((await netrr(['control', `unix:${ctl}`, 'query-status'])).stdout) as Status;
        if (st.endpoints[1]!.counters.txDrops.tooLong! > 0 || Date.now() - t0 > 5000) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const tap = st.endpoints[1]!;
      assert.equal(tap.peer, `tap ntap0 in netns ${ns.name}`);
      assert.equal(tap.counters.txFrames, 4, 'ARP + 3 pings written to the tap');
      assert.equal(tap.counters.txDrops.tapRefused, 0);
      assert.equal(tap.counters.txDrops.tooLong, 1, 'the oversized frame');
      assert.equal(tap.counters.connects, 1, 'the helper never restarted');
      assert.ok(tap.counters.rxFrames >= 4, 'and the replies read from it');
      peer.sock.destroy();
    } finally {
      if (br !== null) await stopProc(br);
      await ns.destroy();
    }
    assert.equal(br?.child.exitCode, 0, br?.out());
  });
}

test('tap endpoint: a namespace that does not exist is a clear error, retried', async () => {
  const sock = join(tmp.path, 'nonet.sock');
  const br = start(process.execPath, [NETRR_BIN, 'bridge', '--a', `unix:${sock},server=on`, '--b', 'tap:ntap9,netns=netrr-no-such-ns,reconnect-ms=100']);
  try {
    await waitFor(() => br.out().includes('netrr-no-such-ns'), 10_000, 'error line');
    assert.match(br.out(), /tap ntap9 \(netns netrr-no-such-ns\): \/run\/netns\/netrr-no-such-ns: No such file or directory; retrying/);
  } finally {
    await stopProc(br);
  }
});

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

test('record a real guest through a tap upstream (dnsmasq DHCP/DNS/TFTP + HTTP in a namespace), replay into a fresh boot: same files, DHCP xid and DNS id learned', async () => {
  const d = join(tmp.path, 'guest');
  const files = join(d, 'files');
  mkdirSync(files, { recursive: true });
  const httpFile = randomBytes(30000);
  const tftpFile = randomBytes(5000);
  writeFileSync(join(files, 'file.bin'), httpFile);
  writeFileSync(join(files, 'tftp.bin'), tftpFile);
  const port = 8080;
  const log = join(d, 'rec.nrrlog');
  const ns = await Netns.create();
  let dnsLog = (): string => '';
  try {
    await ns.addTap('ntap0', '10.0.2.2/24');
    dnsLog = await ns.dnsmasq({ ifname: 'ntap0', dir: d, lease: '10.0.2.15', hosts: { 'files.netrr.test': '10.0.2.2' }, tftpRoot: files });
    await ns.httpServer('10.0.2.2', port, join(files, 'file.bin'));
    const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${d}/guest.sock,server=on`, '--upstream', `tap:ntap0,netns=${ns.name}`, '--log', log]);
    await waitFor(() => existsSync(`${d}/guest.sock`) || rec.child.exitCode !== null, 10_000, 'recorder socket');
    const g = bootGuest('dns-fetch', streamNic(`${d}/guest.sock`), `netrr.port=${port}`);
    const serial = await waitTask(g, 90_000);
    assert.match(serial, /DHCP-OK 10\.0\.2\.15/, serial);
    assert.match(serial, /DNS-OK 10\.0\.2\.2/, serial + dnsLog());
    assert.match(serial, /PING-OK/);
    assert.match(serial, new RegExp(`HTTP-MD5 ${md5(httpFile)} 30000`), serial);
    assert.match(serial, new RegExp(`TFTP-MD5 ${md5(tftpFile)} 5000`), serial);
    await stopProc(rec);
    assert.equal(rec.child.exitCode, 0, rec.out());
    assert.match(dnsLog(), /query\[A\] files\.netrr\.test/, 'dnsmasq answered the query');
  } finally {
    await ns.destroy();
  }

  // No namespace, no dnsmasq, no HTTP server: only the log.
  const rp = await replayIntoGuest({ log, sock: `${d}/replay.sock`, task: 'dns-fetch', cmdline: `netrr.port=${port}`, args: ['--timeout', '15000'] });
  const serial = rp.serial;
  assert.equal(rp.code, 0, rp.out + serial);
  assert.match(serial, /DHCP-OK 10\.0\.2\.15/);
  assert.match(serial, /DNS-OK 10\.0\.2\.2/);
  assert.match(serial, new RegExp(`HTTP-MD5 ${md5(httpFile)} 30000`));
  assert.match(serial, new RegExp(`TFTP-MD5 ${md5(tftpFile)} 5000`));
  const summary = JSON.parse(/replay: MATCHED (\{.*\})/.exec(rp.out)![1]!) as { divergences: number; learned: string[] };
  assert.equal(summary.divergences, 0);
  const tx = summary.learned.find((l) => l.startsWith('transaction ids'));
  assert.ok(tx !== undefined && Number(/(\d+)$/.exec(tx)![1]) >= 2, `DHCP xid and DNS id learned: ${summary.learned.join('; ')}`);
  assert.ok(summary.learned.some((l) => l.startsWith('tcp port')), 'the HTTP connection was learned');
});
