// End to end: `netrr bridge` between a test "guest" and a real outside world
// (QEMU's slirp, guest-less, behind -netdev stream), with --capture and
// --control. Slirp answers ARP for its gateway and NATs UDP to the host's
// loopback, where this test runs a UDP echo server.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import { readCaptureFile } from '../src/io/capture-file.ts';
import { createEndpoint } from '../src/io/open-endpoint.ts';
import { readPacketOptions } from '../src/pcap/pcapng-format.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from './helpers/build-packet.ts';
import { Qemu } from './helpers/qemu.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, run, start, tempDir, tsharkStderr } from './helpers/run.ts';

const tmp = tempDir('netrr-bridge-');
after(() => tmp.cleanup());

const GUEST_MAC = '52:54:00:12:34:56';

function arpFrame(op: 1 | 2, srcMac: number[], srcIp: number[], dstMac: number[], dstIp: number[], ethDst: number[]): Uint8Array {
  const f = new Uint8Array(42);
  f.set(ethDst, 0);
  f.set(srcMac, 6);
  f.set([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, op], 12);
  f.set(srcMac, 22);
  f.set(srcIp, 28);
  f.set(dstMac, 32);
  f.set(dstIp, 38);
  return f;
}

test('netrr bridge in front of slirp: ARP and NATed UDP flow both ways, counted, captured, controllable', async () => {
  const d = join(tmp.path, 'w');
  mkdirSync(d);
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
  const echoPort = echo.address().port;
  const q = new Qemu([
    '-netdev', 'user,id=u', '-netdev', 'hubport,id=h0,hubid=0,netdev=u',
    '-netdev', `stream,id=s,server=on,addr.type=unix,addr.path=${d}/world.sock`, '-netdev', 'hubport,id=h1,hubid=0,netdev=s',
  ]);
  await q.waitForSockets([`${d}/world.sock`]);
  const cap = join(d, 'bridge.pcapng');
  const bridge = start(process.execPath, [NETRR_BIN, 'bridge', '--a', `unix:${d}/guest.sock,server=on`, '--b', `unix:${d}/world.sock`, '--capture', cap, '--control', `unix:${d}/ctl.sock`]);
  const guest = createEndpoint(`unix:${d}/guest.sock,reconnect-ms=100`);
  let ctl: ControlClient | null = null;
  try {
    const received: Uint8Array[] = [];
    const mac = GUEST_MAC.split(':').map((x) => parseInt(x, 16));
    guest.onFrame = (f) => {
      received.push(Uint8Array.from(f));
      // Answer slirp's ARP requests for the guest address.
      if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 1 && f[38] === 10 && f[39] === 0 && f[40] === 2 && f[41] === 15) {
        guest.send(arpFrame(2, mac, [10, 0, 2, 15], [...f.subarray(22, 28)], [...f.subarray(28, 32)], [...f.subarray(6, 12)]), 0);
      }
    };
    await guest.start();
    await guest.waitConnected(10_000);
    await waitFor(() => existsSync(`${d}/ctl.sock`) || bridge.child.exitCode !== null, 10_000, 'control socket');
    assert.equal(bridge.child.exitCode, null, bridge.out());
    ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
    // Wait until the bridge's world side is up.
    for (let i = 0; i < 50; i++) {
      const st = (await ctl.execute('query-status')) as { endpoints: { connected: boolean }[] };
      if (st.endpoints.every((e) => e.connected)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 200));
    // 1. ARP who-has 10.0.2.2 → slirp's gateway answers.
    guest.send(arpFrame(1, mac, [10, 0, 2, 15], [0, 0, 0, 0, 0, 0], [10, 0, 2, 2], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0);
    const v = new PacketView();
    await waitFor(() => received.some((f) => v.decode(f).arpOp === 2), 5000, 'ARP reply from slirp');
    const reply = received.find((f) => new PacketView().decode(f).arpOp === 2)!;
    const gwMac = [...reply.subarray(6, 12)].map((x) => x.toString(16).padStart(2, '0')).join(':');
    // 2. UDP to 10.0.2.2:echoPort is NATed to 127.0.0.1:echoPort and the echo comes back.
    for (let i = 0; i < 5; i++) {
      guest.send(buildFrame({ src: GUEST_MAC, dst: gwMac, ipSrc: '10.0.2.15', ipDst: '10.0.2.2', proto: 'udp', srcPort: 5555, dstPort: echoPort, payload: `hello ${i}` }), 0);
    }
    await waitFor(() => received.filter((f) => v.decode(f).srcPort === echoPort).length === 5, 10_000, 'five UDP echoes through slirp');
    const echoes = received.filter((f) => new PacketView().decode(f).srcPort === echoPort).map((f) => {
      const p = new PacketView().decode(f);
      return Buffer.from(f.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString();
    });
    assert.deepEqual(echoes.sort(), [0, 1, 2, 3, 4].map((i) => `echo:hello ${i}`));
    // 3. Accounting through the control socket: every frame in is out or dropped with a reason.
    const st = (await ctl.execute('query-status')) as { endpoints: { name: string; counters: { rxFrames: number; txFrames: number; txQueuedFrames: number; txDrops: Record<string, number> } }[]; capture: { captured: number } };
    const [a, b] = st.endpoints;
    const dropped = (c: { txDrops: Record<string, number> }): number => Object.values(c.txDrops).reduce((x, y) => x + y, 0);
    assert.equal(a!.counters.rxFrames, b!.counters.txFrames + b!.counters.txQueuedFrames + dropped(b!.counters));
    assert.equal(b!.counters.rxFrames, a!.counters.txFrames + a!.counters.txQueuedFrames + dropped(a!.counters));
    assert.ok(a!.counters.rxFrames >= 6);
    assert.equal(st.capture.captured, a!.counters.rxFrames + b!.counters.rxFrames);
    // 4. quit over the control socket: the bridge exits 0 and the capture is complete.
    await ctl.execute('quit');
    await waitFor(() => bridge.child.exitCode !== null, 10_000, 'bridge exit');
    assert.equal(bridge.child.exitCode, 0, bridge.out());
    const c = await run('capinfos', [cap]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stderr, '');
    const t = await run('tshark', ['-r', cap, '-Y', 'udp.srcport == ' + echoPort, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.packet_flags_direction', '-e', 'udp.payload']);
    assert.equal(tsharkStderr(t.stderr), '');
    const rows = t.stdout.trim().split('\n');
    assert.equal(rows.length, 5);
    for (const r of rows) assert.match(r, /^b\t0x00000001\t6563686f3a/); // from the world side, inbound, "echo:"
    let n = 0;
    await readCaptureFile(cap, (r) => {
      n++;
      assert.equal(readPacketOptions(r.options, r.littleEndian).flags, 1);
    });
    assert.equal(n, st.capture.captured);
  } finally {
    ctl?.close();
    await guest.close();
    if (bridge.child.exitCode === null) bridge.child.kill('SIGKILL');
    await q.stop();
    echo.close();
  }
});
