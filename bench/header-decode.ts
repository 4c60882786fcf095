// Header decode rate: PacketView.decode over a mix of real-shaped frames
// (TCP with options, UDP, IPv6/TCP, VLAN UDP, ICMP). Run: node dist/bench/header-decode.js

import { FlowKey, fillFlowKey } from '../src/packet/flow-key.ts';
import { PacketView } from '../src/packet/packet-view.ts';
import { buildFrame } from '../test/helpers/build-packet.ts';
import { fmtRate, row, timeIt } from './bench-util.ts';

const mix = [
  buildFrame({ proto: 'tcp', tcpOptions: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], payload: new Uint8Array(1448) }),
  buildFrame({ proto: 'udp', payload: new Uint8Array(18) }),
  buildFrame({ ip: 6, proto: 'tcp', payload: new Uint8Array(100) }),
  buildFrame({ vlans: [10], proto: 'udp', payload: new Uint8Array(200) }),
  buildFrame({ proto: 'icmp', payload: new Uint8Array(56) }),
];
const N = 10_000_000;
const frames = Array.from({ length: 1024 }, (_, i) => mix[i % mix.length]!);
const v = new PacketView();
const key = new FlowKey();
let sink = 0;

console.log(`# header decode, ${N / 1e6} M frames from a mix of ${mix.length} shapes; median of 5 rounds`);
console.log(row(['case', 'headers/s', 'ns/header']));
const tDecode = timeIt(() => {
  for (let i = 0; i < N; i++) sink += v.decode(frames[i & 1023]!).srcPort;
});
console.log(row(['decode (L2-L4 + TCP options)', fmtRate(N / tDecode), ((tDecode / N) * 1e9).toFixed(1)]));
const tKey = timeIt(() => {
  for (let i = 0; i < N; i++) {
    v.decode(frames[i & 1023]!);
    fillFlowKey(v, key);
    sink += key.hash & 1;
  }
});
console.log(row(['decode + canonical flow key', fmtRate(N / tKey), ((tKey / N) * 1e9).toFixed(1)]));
if (sink === -1) console.log(sink);
