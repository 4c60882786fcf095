// Regenerates fixtures/sample.pcapng: a real capture of `netrr bridge` in
// front of QEMU's slirp (ARP, ICMP echo, UDP through slirp's NAT, TFTP).
// Run after `npm run build`: node scripts/make-sample.mjs
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bridge } from '../dist/src/app/bridge.js';
import { createEndpoint } from '../dist/src/io/open-endpoint.js';
import { PacketView } from '../dist/src/packet/packet-view.js';
import { buildFrame } from '../dist/test/helpers/build-packet.js';

const d = mkdtempSync(join(tmpdir(), 'netrr-sample-'));
writeFileSync(join(d, 'hello.txt'), 'Hello from the outside world, served by slirp TFTP.\n');
const q = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-nographic', '-display', 'none',
  '-netdev', `user,id=u,tftp=${d}`, '-netdev', 'hubport,id=h0,hubid=0,netdev=u',
  '-netdev', `stream,id=s,server=on,addr.type=unix,addr.path=${d}/world.sock`, '-netdev', 'hubport,id=h1,hubid=0,netdev=s'], { stdio: 'inherit' });
while (!existsSync(`${d}/world.sock`)) await new Promise((r) => setTimeout(r, 20));
const echo = dgram.createSocket('udp4');
echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
await new Promise((r) => echo.bind(0, '127.0.0.1', r));
const bridge = new Bridge({ a: `unix:${d}/guest.sock,server=on`, b: `unix:${d}/world.sock`, capture: `${d}/sample.pcapng` });
await bridge.start();
const guest = createEndpoint(`unix:${d}/guest.sock`);
const mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
const v = new PacketView();
let gw = null;
const got = [];
guest.onFrame = (f) => {
  got.push(Uint8Array.from(f));
  v.decode(f);
  if (v.arpOp === 1 && f[41] === 15) {
    const r = new Uint8Array(42);
    r.set(f.subarray(6, 12), 0); r.set(mac, 6); r.set([8, 6, 0, 1, 8, 0, 6, 4, 0, 2], 12);
    r.set(mac, 22); r.set([10, 0, 2, 15], 28); r.set(f.subarray(22, 32), 32);
    guest.send(r, 0);
  }
  if (v.arpOp === 2) gw = [...f.subarray(6, 12)].map((x) => x.toString(16).padStart(2, '0')).join(':');
  // TFTP DATA → ACK
  if (v.srcPort >= 0 && v.dstPort === 2000 && f[v.payloadOffset + 1] === 3) {
    const blk = f.subarray(v.payloadOffset + 2, v.payloadOffset + 4);
    guest.send(buildFrame({ src: '52:54:00:12:34:56', dst: gw, ipSrc: '10.0.2.15', ipDst: '10.0.2.2', proto: 'udp', srcPort: 2000, dstPort: v.srcPort, payload: Uint8Array.of(0, 4, blk[0], blk[1]) }), 0);
  }
};
await guest.start();
await guest.waitConnected(5000);
await bridge.b.waitConnected(5000);
await new Promise((r) => setTimeout(r, 200));
const arp = new Uint8Array(42);
arp.fill(0xff, 0, 6); arp.set(mac, 6); arp.set([8, 6, 0, 1, 8, 0, 6, 4, 0, 1], 12); arp.set(mac, 22); arp.set([10, 0, 2, 15], 28); arp.set([10, 0, 2, 2], 38);
guest.send(arp, 0);
while (gw === null) await new Promise((r) => setTimeout(r, 10));
const base = { src: '52:54:00:12:34:56', dst: gw, ipSrc: '10.0.2.15', ipDst: '10.0.2.2' };
for (let i = 0; i < 3; i++) guest.send(buildFrame({ ...base, proto: 'icmp', icmpId: 0x4242, payload: `ping ${i}` }), 0);
for (let i = 0; i < 3; i++) guest.send(buildFrame({ ...base, proto: 'udp', srcPort: 5555, dstPort: echo.address().port, payload: `hello ${i}` }), 0);
const rrq = Buffer.concat([Buffer.from([0, 1]), Buffer.from('hello.txt\0octet\0')]);
guest.send(buildFrame({ ...base, proto: 'udp', srcPort: 2000, dstPort: 69, payload: rrq }), 0);
await new Promise((r) => setTimeout(r, 1500));
await guest.close();
await bridge.stop();
q.kill();
echo.close();
copyFileSync(`${d}/sample.pcapng`, new URL('../fixtures/sample.pcapng', import.meta.url));
console.log(`fixtures/sample.pcapng: ${got.length} frames received by the test guest`);
