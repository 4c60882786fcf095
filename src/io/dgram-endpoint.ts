// UDP endpoint: one Ethernet frame per datagram with no length prefix, as
// QEMU's -netdev dgram and socket,udp= (reference qemu-interop.md §2). QEMU
// treats a 0-byte datagram as end-of-connection and stops reading, so we
// never send one; we count and ignore any we receive. Datagrams from other
// than the configured remote (address and port) are turned away and counted
// (rejectedPeers): anyone on the host could otherwise inject frames.

import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { NetrrError, fromSystemError } from '../errors.ts';
import { Listeners } from '../events.ts';
import { NET_BUFSIZE_BYTES } from '../codec/qemu-framing.ts';
import { EndpointCounters } from '../engine/frame-counters.ts';
import type { UdpSpec } from './endpoint-spec.ts';
import type { EndpointEvent, EndpointStatus, FrameEndpoint } from './frame-endpoint.ts';

/** Sends in flight (handed to libuv, not yet completed) before new frames are dropped. */
export const DGRAM_MAX_IN_FLIGHT = 4096;
/** Below this many in flight the endpoint reports itself writable again. */
export const DGRAM_LOW_WATER = 1024;

const noop = (): void => {};

export class DgramEndpoint implements FrameEndpoint {
  readonly name: string;
  readonly spec: UdpSpec;
  readonly counters = new EndpointCounters();
  readonly vnetHdr = false;
  readonly maxFrameBytes: number;
  onFrame: (frame: Uint8Array, vnetHdrLen: number) => void = noop;
  onRead: () => void = noop;
  readonly events = new Listeners<EndpointEvent>();
  onDrain: () => void = noop;
  #sock: dgram.Socket | null = null;
  #closed = false;
  #paused = false;
  #needDrain = false;
  #local: string | undefined;
  /** The remote's address as recvfrom reports it (resolved once at start). */
  #remoteAddress = '';

  constructor(spec: UdpSpec, options: { name?: string; maxFrameBytes?: number } = {}) {
    if (spec.vnetHdr) throw new NetrrError('ERR_BAD_ENDPOINT_SPEC', `${spec.text}: datagram endpoints carry no vnet header field`);
    this.spec = spec;
    this.name = options.name ?? spec.text;
    this.maxFrameBytes = options.maxFrameBytes ?? NET_BUFSIZE_BYTES;
  }

  get connected(): boolean {
    return this.#sock !== null;
  }

  get writable(): boolean {
    return this.#sock !== null && this.counters.txQueuedFrames < DGRAM_MAX_IN_FLIGHT;
  }

  async start(): Promise<void> {
    const spec = this.spec;
    const type = net.isIPv6(spec.localHost) ? 'udp6' : 'udp4';
    this.#remoteAddress = await resolveRemote(spec.remoteHost, type === 'udp6' ? 6 : 4);
    const sock = dgram.createSocket({ type });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(fromSystemError(e, `bind ${spec.text}`)));
      sock.bind(spec.localPort, spec.localHost, () => resolve());
    });
    sock.on('error', (e) => this.events.emit({ type: 'error', endpoint: this.name, detail: e.message, code: 'ERR_IO' }));
    sock.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    const a = sock.address();
    this.#local = `${a.address}:${a.port}`;
    this.#sock = sock;
    this.counters.connects++;
    this.events.emit({ type: 'listening', endpoint: this.name, detail: this.#local });
  }

  /** The bound UDP port (for udp:HOST:0 specs). */
  get localPort(): number | undefined {
    return this.#sock?.address().port;
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    if (rinfo.port !== this.spec.remotePort || unmapped(rinfo.address) !== this.#remoteAddress) {
      c.rejectedPeers++;
      return;
    }
    if (msg.length === 0) {
      c.rxDrops.zeroLength++;
      return;
    }
    if (msg.length > this.maxFrameBytes) {
      c.rxDrops.tooLong++;
      return;
    }
    c.rxFrames++;
    c.rxBytes += msg.length;
    this.onRead();
    this.onFrame(msg, 0);
  }

  send(frame: Uint8Array, vnetHdrLen: number): boolean {
    const c = this.counters;
    if (this.#closed) {
      c.txDrops.closed++;
      return false;
    }
    const sock = this.#sock;
    if (sock === null) {
      c.txDrops.noPeer++;
      return false;
    }
    if (frame.length === 0 || frame.length > this.maxFrameBytes || vnetHdrLen !== 0) {
      c.txDrops.tooLong++;
      return false;
    }
    if (c.txQueuedFrames >= DGRAM_MAX_IN_FLIGHT) {
      c.txDrops.backpressure++;
      this.#needDrain = true;
      return false;
    }
    c.txQueuedFrames++;
    // This send made the endpoint unwritable: whoever saw that waits for onDrain.
    if (c.txQueuedFrames >= DGRAM_MAX_IN_FLIGHT) this.#needDrain = true;
    // libuv sends from this memory later: the copy is the ownership boundary.
    const len = frame.length;
    sock.send(Buffer.from(frame), this.spec.remotePort, this.spec.remoteHost, (err) => {
      c.txQueuedFrames--;
      if (err) c.txDrops.writeError++;
      else {
        c.txFrames++;
        c.txBytes += len;
      }
      if (this.#needDrain && c.txQueuedFrames <= DGRAM_LOW_WATER) {
        this.#needDrain = false;
        this.onDrain();
      }
    });
    return true;
  }

  /** UDP cannot push back on its peer: while paused, frames are still read and delivered. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
  }

  waitConnected(_timeoutMs: number): Promise<void> {
    if (this.#sock !== null) return Promise.resolve();
    return Promise.reject(new NetrrError('ERR_CONNECT', `${this.name}: not started`));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const sock = this.#sock;
    if (sock !== null) await new Promise<void>((resolve) => sock.close(() => resolve()));
  }

  status(): EndpointStatus {
    return {
      name: this.name,
      spec: this.spec.text,
      connected: this.connected,
      writable: this.writable,
      paused: this.#paused,
      local: this.#local,
      peer: `${this.spec.remoteHost}:${this.spec.remotePort}`,
      counters: this.counters.toJSON(),
    };
  }
}

/** The address a datagram from `host` arrives from, in the socket's family (a name resolved once). */
async function resolveRemote(host: string, family: 4 | 6): Promise<string> {
  if (net.isIP(host) !== 0) return unmapped(host);
  try {
    return unmapped((await lookup(host, { family })).address);
  } catch (e) {
    throw fromSystemError(e, `resolve remote ${host}`);
  }
}

/** "::ffff:127.0.0.1" → "127.0.0.1": a v4 peer seen by a v6 socket is the same peer. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}
