// What a guest sends in `netrr demo`: the output of one COLO replica serving
// a client on its LAN, as real frames with correct checksums. The primary and
// the secondary produce the same frames, except that the secondary can be
// told to get one byte of one TCP segment wrong (the deliberate divergence).
// Pure: the frames are built up front, in the order the guest sends them.

import { buildFrame } from '../packet/frame-builder.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../packet/l4.ts';

export const DEMO_GUEST = { mac: '52:54:00:12:34:56', ip: '10.0.2.15' } as const;
export const DEMO_CLIENT = { mac: '52:55:0a:00:02:02', ip: '10.0.2.2' } as const;
export const DEMO_DNS = '10.0.2.3';
/** The download's TCP segment size (an Ethernet MTU's worth). */
export const DEMO_MSS = 1460;

export interface DemoTrafficOptions {
  /** Bytes of the HTTP body the guest serves. */
  readonly fileBytes: number;
  /** Echo replies to the client's pings, spread through the download. */
  readonly pings: number;
  /** Secondary only: the index of the data segment whose byte `divergeOffset` differs (-1: none). */
  readonly divergeSegment: number;
  readonly divergeOffset: number;
}

export const DEFAULT_DEMO_TRAFFIC: DemoTrafficOptions = { fileBytes: 4 * 1024 * 1024, pings: 20, divergeSegment: -1, divergeOffset: 0 };

export type DemoFrameKind = 'arp' | 'icmp' | 'dns' | 'tcp';

export interface DemoFrame {
  readonly kind: DemoFrameKind;
  readonly frame: Uint8Array;
}

/** The file's bytes: printable, so a divergence reads well in the report. */
export function demoFileByte(i: number): number {
  return 0x41 + (((i * 7) ^ (i >>> 11)) % 26);
}

function arpReply(): Uint8Array {
  const f = new Uint8Array(42);
  const mac = (s: string): number[] => s.split(':').map((x) => parseInt(x, 16));
  const ip = (s: string): number[] => s.split('.').map(Number);
  f.set([...mac(DEMO_CLIENT.mac), ...mac(DEMO_GUEST.mac), 0x08, 0x06]);
  f.set([0, 1, 0x08, 0, 6, 4, 0, 2, ...mac(DEMO_GUEST.mac), ...ip(DEMO_GUEST.ip), ...mac(DEMO_CLIENT.mac), ...ip(DEMO_CLIENT.ip)], 14);
  return f;
}

/** A DNS query for netrr.example, type A (RFC 1035 §4.1). */
function dnsQuery(id: number): Uint8Array {
  const name = [5, ...new TextEncoder().encode('netrr'), 7, ...new TextEncoder().encode('example'), 0];
  const msg = new Uint8Array([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...name, 0, 1, 0, 1]);
  return buildFrame({ src: DEMO_GUEST.mac, dst: DEMO_CLIENT.mac, ipSrc: DEMO_GUEST.ip, ipDst: DEMO_DNS, proto: 'udp', srcPort: 33000, dstPort: 53, ipId: id, payload: msg });
}

function echoReply(seq: number): Uint8Array {
  const payload = new Uint8Array(56).map((_, i) => (i + seq) & 0xff);
  const f = buildFrame({ src: DEMO_GUEST.mac, dst: DEMO_CLIENT.mac, ipSrc: DEMO_GUEST.ip, ipDst: DEMO_CLIENT.ip, proto: 'icmp', icmpType: 0, icmpId: 0x4e52, ipId: 0x1000 + seq, payload });
  return f;
}

/**
 * The replica's output, in sending order: its ARP reply to the client, a DNS
 * query, then the HTTP download (SYN/ACK, the response in MSS-sized
 * segments, FIN) with echo replies spread through it.
 */
export function replicaOutput(o: DemoTrafficOptions): DemoFrame[] {
  const out: DemoFrame[] = [{ kind: 'arp', frame: arpReply() }, { kind: 'dns', frame: dnsQuery(0x6e72) }];
  const tcp = (seq: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array =>
    buildFrame({ src: DEMO_GUEST.mac, dst: DEMO_CLIENT.mac, ipSrc: DEMO_GUEST.ip, ipDst: DEMO_CLIENT.ip, proto: 'tcp', srcPort: 80, dstPort: 40000, seq, ack: 5001, tcpFlags: flags, window: 64240, payload });
  const isn = 1_000_000;
  out.push({ kind: 'tcp', frame: tcp(isn, TCP_SYN | TCP_ACK) });
  const head = new TextEncoder().encode(`HTTP/1.0 200 OK\r\nContent-Length: ${o.fileBytes}\r\n\r\n`);
  const total = head.length + o.fileBytes;
  const segments = Math.ceil(total / DEMO_MSS);
  const pingEvery = o.pings > 0 ? Math.max(1, Math.floor(segments / o.pings)) : Infinity;
  let pings = 0;
  for (let s = 0; s < segments; s++) {
    const from = s * DEMO_MSS;
    const len = Math.min(DEMO_MSS, total - from);
    const payload = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const at = from + i;
      payload[i] = at < head.length ? head[at]! : demoFileByte(at - head.length);
    }
    if (s === o.divergeSegment) payload[Math.min(o.divergeOffset, len - 1)]! ^= 0x20;
    out.push({ kind: 'tcp', frame: tcp(isn + 1 + from, TCP_ACK | (s === segments - 1 ? TCP_PSH : 0), payload) });
    if ((s + 1) % pingEvery === 0 && pings < o.pings) out.push({ kind: 'icmp', frame: echoReply(++pings) });
  }
  out.push({ kind: 'tcp', frame: tcp(isn + 1 + total, TCP_ACK | TCP_FIN) });
  return out;
}

/** What guest/src/colo-serve.c answers to GET /data/N: a xorshift32 stream from seed 1, each state's four bytes little-endian. */
export function coloServeData(n: number): Uint8Array {
  const out = new Uint8Array(n + 4);
  let x = 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = x >>> 24;
  }
  return out.subarray(0, n);
}
