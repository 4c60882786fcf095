// Stream socket endpoint (unix or TCP, server or client) speaking QEMU's
// framing: a -netdev stream/socket peer or a colo-compare / filter-mirror /
// filter-redirector chardev peer (reference qemu-interop.md §1-2, §4).
// A tap: endpoint is the same stream to the native tap helper.
//
// This file is the framed duplex over one socket at a time; how the socket
// is obtained (listen, dial, spawn the tap helper, reconnect with backoff)
// is src/io/socket-source.ts. One peer at a time, as QEMU: extra peers are
// turned away (counted). Reads pause on request (backpressure toward the
// peer); writes are batched into one write() per tick and only ever contain
// whole records.

import type net from 'node:net';
import { NetrrError } from '../errors.ts';
import { Listeners } from '../events.ts';
import { FrameDecoder, NET_BUFSIZE_BYTES } from '../codec/qemu-framing.ts';
import { RecordBatch } from '../codec/record-batch.ts';
import { EndpointCounters } from '../engine/frame-counters.ts';
import type { StreamSpec } from './endpoint-spec.ts';
import type { EndpointEvent, EndpointStatus, FrameEndpoint } from './frame-endpoint.ts';
import { ArenaReader } from './arena-reader.ts';
import { type SocketSource, socketSource } from './socket-source.ts';
import { TAP_MAX_RECORD_BYTES } from './tap-helper.ts';

/** Above this many unsent bytes the endpoint reports itself not writable. */
export const STREAM_HIGH_WATER_BYTES = 1024 * 1024;
/** Above this many unsent bytes new frames are dropped (reason backpressure). */
export const STREAM_HARD_LIMIT_BYTES = 8 * 1024 * 1024;
/** How long close() waits for the peer to take queued records before destroying. */
export const CLOSE_GRACE_MS = 2000;

export interface StreamEndpointOptions {
  readonly name?: string;
  readonly maxFrameBytes?: number;
  readonly highWaterBytes?: number;
  readonly hardLimitBytes?: number;
  /** File mode for a unix server socket (e.g. 0o600). */
  readonly socketMode?: number;
  /**
   * Whether records we send carry the vnet field, when it differs from what we
   * receive: colo-compare's notify_dev reads the field (with vnet_hdr_support)
   * but never writes it (reference colo-proxy.md §8.9).
   */
  readonly txVnetHdr?: boolean;
  /**
   * The frames handed to onFrame are valid only during the call: reads reuse
   * one buffer (src/io/arena-reader.ts, recycled), and the consumer copies
   * what it keeps. Without it frames may be kept (segmented arena).
   */
  readonly borrowedFrames?: boolean;
}

export type ReadPath = 'onread' | 'data';

const noop = (): void => {};

export class StreamEndpoint implements FrameEndpoint {
  readonly name: string;
  readonly spec: StreamSpec;
  readonly counters = new EndpointCounters();
  readonly vnetHdr: boolean;
  readonly maxFrameBytes: number;
  readonly highWaterBytes: number;
  readonly hardLimitBytes: number;
  onFrame: (frame: Uint8Array, vnetHdrLen: number) => void = noop;
  onRead: () => void = noop;
  readonly events = new Listeners<EndpointEvent>();
  onDrain: () => void = noop;

  #decoder: FrameDecoder;
  #batch: RecordBatch;
  #batchFrameBytes = 0;
  /** Bytes handed to socket.write() whose callbacks have not run yet. */
  #inFlightBytes = 0;
  #flushScheduled = false;
  #socket: net.Socket | null = null;
  #paused = false;
  #closed = false;
  #needDrain = false;
  /** waitConnected() callers: settled at the next connect, or failed when the endpoint closes first. */
  #connectWaiters: { done: () => void; fail: (e: NetrrError) => void }[] = [];
  #peer: string | undefined;
  /** How the current socket is read: into our arena, or by 'data' events (tap helper, or the runtime refused). */
  #readPath: ReadPath = 'data';
  readonly #source: SocketSource;
  readonly #arena: ArenaReader;

  constructor(spec: StreamSpec, options: StreamEndpointOptions = {}) {
    this.spec = spec;
    this.name = options.name ?? spec.text;
    this.vnetHdr = spec.vnetHdr;
    // The tap helper takes records up to TAP_MAX_RECORD_BYTES and would have to drop the stream
    // on a larger one: refuse those here, counted (tooLong), instead.
    const max = options.maxFrameBytes ?? NET_BUFSIZE_BYTES;
    this.maxFrameBytes = spec.kind === 'tap' ? Math.min(max, TAP_MAX_RECORD_BYTES) : max;
    this.highWaterBytes = options.highWaterBytes ?? STREAM_HIGH_WATER_BYTES;
    this.hardLimitBytes = options.hardLimitBytes ?? STREAM_HARD_LIMIT_BYTES;
    this.#decoder = new FrameDecoder({ vnetHdr: spec.vnetHdr, maxFrameBytes: this.maxFrameBytes }, (frame, vnetLen) => {
      this.counters.rxFrames++;
      this.counters.rxBytes += frame.length;
      this.onFrame(frame, vnetLen);
    });
    this.#batch = new RecordBatch(options.txVnetHdr ?? spec.vnetHdr);
    this.#arena = new ArenaReader(options.borrowedFrames === true ? 'recycled' : 'segmented', (chunk) => this.#onChunk(chunk));
    this.#source = socketSource(
      spec,
      {
        name: this.name,
        attach: (sock, peer, viaOnread) => this.#attach(sock, peer, viaOnread),
        event: (e) => this.#emit(e),
        tapRefused: () => {
          // Already counted as written to the helper: move it to the drop reason.
          this.counters.txFrames--;
          this.counters.txDrops.tapRefused++;
        },
      },
      { socketMode: options.socketMode, onread: this.#arena.onread },
    );
  }

  /** A socket destroyed by an error is gone before its 'close' event: writes to it vanish, so it is not connected. */
  get connected(): boolean {
    return this.#socket !== null && !this.#socket.destroyed;
  }

  get writable(): boolean {
    return this.connected && this.#pendingBytes() < this.highWaterBytes;
  }

  /**
   * Bytes batched or written and not yet confirmed by their write callbacks.
   * Not the socket's writableLength: a write the kernel takes at once leaves
   * writableLength at 0 while its callback waits for the next tick, so a burst
   * (an epoch commit) would go to the kernel whole in one synchronous call, every
   * batch in a fresh buffer because none is given back before the burst ends.
   * Counting until the callback caps a tick's burst at the high-water mark.
   */
  #pendingBytes(): number {
    return this.#inFlightBytes + this.#batch.byteLength;
  }

  async start(): Promise<void> {
    await this.#source.start();
  }

  /** The TCP port a server listens on (for tcp:HOST:0 specs). */
  get localPort(): number | undefined {
    return this.#source.localPort;
  }

  // ---- a connected peer (from the source) ----

  #attach(sock: net.Socket, peer: string | undefined, viaOnread: boolean): boolean {
    if (this.#socket !== null || this.#closed) {
      this.counters.rejectedPeers++;
      this.#emit({ type: 'rejected-peer', endpoint: this.name, detail: 'a peer is already connected' });
      return false;
    }
    this.#socket = sock;
    this.#decoder.reset();
    this.counters.connects++;
    this.#peer = peer;
    this.#readPath = viaOnread ? 'onread' : 'data';
    if (this.#paused) sock.pause();
    if (!viaOnread) sock.on('data', (chunk: Buffer) => this.#onData(sock, chunk));
    sock.on('error', (e) => {
      this.#emit({ type: 'error', endpoint: this.name, detail: e.message, code: 'ERR_IO' });
    });
    sock.on('close', () => this.#onClose(sock));
    this.#emit({ type: 'connected', endpoint: this.name, detail: this.#peer ?? '' });
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.done();
    return true;
  }

  #onData(sock: net.Socket, chunk: Buffer): void {
    if (sock !== this.#socket) return;
    this.#onChunk(chunk);
  }

  /** Bytes read from the current socket (an arena read: the socket is the current one, reads stop when it closes). */
  #onChunk(chunk: Uint8Array): void {
    const sock = this.#socket;
    if (sock === null) return;
    const d = this.#decoder;
    if (d.error !== null) {
      this.counters.rxDiscardedBytes += chunk.length;
      return;
    }
    this.onRead();
    const err = d.push(chunk);
    const c = this.counters;
    c.rxDrops.zeroLength = d.zeroLengthRecords;
    c.rxDrops.badVnetHdr = d.badVnetRecords;
    if (err !== null) {
      // Unlike QEMU (which stops reading for good), close this connection and
      // let the peer reconnect: nothing after the bad length can be trusted.
      c.framingErrors++;
      c.rxDrops.tooLong++;
      this.#emit({ type: 'error', endpoint: this.name, detail: err.message, code: err.code });
      sock.destroy();
    }
  }

  #onClose(sock: net.Socket): void {
    if (sock !== this.#socket) return;
    this.#socket = null;
    this.#peer = undefined;
    this.counters.disconnects++;
    if (this.#decoder.error === null && !this.#decoder.atBoundary) {
      this.counters.rxDrops.tornRecord++;
      // Counted either way; an error only when the peer left, not when we closed on it.
      if (!this.#closed) this.#emit({ type: 'error', endpoint: this.name, detail: 'peer closed in the middle of a record', code: 'ERR_ENDPOINT_CLOSED' });
    }
    this.#decoder.reset();
    // Frames still batched never reached the peer.
    const lost = this.#batch.count;
    if (lost > 0) {
      this.#batch.take();
      this.#batchFrameBytes = 0;
      this.counters.txQueuedFrames -= lost;
      this.counters.txDrops.noPeer += lost;
    }
    this.#emit({ type: 'disconnected', endpoint: this.name });
    // The peer took its queued bytes with it: whoever paused for this endpoint may go on
    // (sends now drop as noPeer, as QEMU's do). A stale pause here stalled the inputs for good.
    if (this.#needDrain) {
      this.#needDrain = false;
      this.onDrain();
    }
    if (!this.#closed) this.#source.lost();
  }

  // ---- sending ----

  send(frame: Uint8Array, vnetHdrLen: number): boolean {
    const c = this.counters;
    if (this.#closed) {
      c.txDrops.closed++;
      return false;
    }
    if (frame.length === 0 || frame.length > this.maxFrameBytes || vnetHdrLen > frame.length) {
      c.txDrops.tooLong++;
      return false;
    }
    const sock = this.#socket;
    if (sock === null || sock.destroyed) {
      c.txDrops.noPeer++;
      return false;
    }
    const pending = this.#pendingBytes();
    if (pending + frame.length > this.hardLimitBytes) {
      c.txDrops.backpressure++;
      this.#needDrain = true;
      return false;
    }
    if (!this.#batch.fits(frame.length)) this.#flush();
    this.#batch.append(frame, vnetHdrLen);
    this.#batchFrameBytes += frame.length;
    c.txQueuedFrames++;
    // From the bytes now pending, record framing included: a check on the frame's length alone
    // missed the last 4 bytes, left writable false without a drain to come, and stalled the port.
    if (this.#pendingBytes() >= this.highWaterBytes) this.#needDrain = true;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#flushTick);
    }
    return true;
  }

  #flushTick = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    const sock = this.#socket;
    const n = this.#batch.count;
    const bytes = this.#batchFrameBytes;
    const data = this.#batch.take();
    this.#batchFrameBytes = 0;
    if (data === null || sock === null) return;
    const c = this.counters;
    const len = data.length;
    this.#inFlightBytes += len;
    sock.write(data, (err) => {
      this.#inFlightBytes -= len;
      c.txQueuedFrames -= n;
      if (err) c.txDrops.writeError += n;
      else {
        c.txFrames += n;
        c.txBytes += bytes;
      }
      // The kernel has the bytes: the batch's buffer can carry the next one.
      this.#batch.recycle(data);
      // Pending bytes only ever fall here (they count until this callback), so this is where a
      // drain is owed; the socket's own 'drain' event, which a write below its mark never brings,
      // is not needed.
      this.#checkDrain();
    });
  }

  #checkDrain(): void {
    if (this.#needDrain && this.writable) {
      this.#needDrain = false;
      this.onDrain();
    }
  }

  pause(): void {
    this.#paused = true;
    this.#socket?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#socket?.resume();
  }

  waitConnected(timeoutMs: number): Promise<void> {
    if (this.#socket !== null) return Promise.resolve();
    if (this.#closed) return Promise.reject(new NetrrError('ERR_ENDPOINT_CLOSED', `${this.name}: closed while waiting for a peer`));
    return new Promise((resolve, reject) => {
      const w = {
        done: (): void => {
          clearTimeout(t);
          resolve();
        },
        // A waiter must not outlive the endpoint (its timer would keep the process alive).
        fail: (e: NetrrError): void => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.#connectWaiters = this.#connectWaiters.filter((x) => x !== w);
        reject(new NetrrError('ERR_CONNECT', `${this.name}: no peer connected within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#connectWaiters.push(w);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.fail(new NetrrError('ERR_ENDPOINT_CLOSED', `${this.name}: closed while waiting for a peer`));
    this.#flush();
    const sock = this.#socket;
    if (sock !== null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          sock.destroy();
        }, CLOSE_GRACE_MS);
        sock.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        // end() after the queued writes: only whole records are ever in flight.
        sock.end();
      });
    }
    // After the peer's socket: a server's close() waits for its connections to end.
    await this.#source.close();
  }

  status(): EndpointStatus {
    return {
      name: this.name,
      spec: this.spec.text,
      connected: this.connected,
      writable: this.writable,
      paused: this.#paused,
      readPath: this.#readPath,
      local: this.#source.local,
      peer: this.#peer,
      counters: this.counters.toJSON(),
    };
  }

  #emit(e: EndpointEvent): void {
    this.events.emit(e);
  }
}
