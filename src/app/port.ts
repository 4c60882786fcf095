// A port is where an app meets one endpoint: frames from the endpoint go to
// `onFrame`; frames for it go through send(), which converts the vnet field
// to what the endpoint carries and keeps, in order, whatever the endpoint
// cannot take yet. The backlog is paced by the endpoint's drain, so a burst
// larger than the endpoint's write limit (a checkpoint flush of 144 MB
// against an 8 MiB socket limit) arrives whole instead of being dropped
// (issue 8 item 2). While a backlog exists or the endpoint is above its
// high-water mark the port is congested; a PauseGroup pauses the inputs that
// feed it. A peer that leaves takes the backlog with it (counted noPeer):
// what QEMU's chardevs do with frames for an absent peer.
//
// Ownership: a frame handed to send() may be kept. FrameEndpoint views are
// never reused and engines hand over their own copies, so no copy is made.

import { Listeners } from '../events.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';

/** Default bound on a port's backlog; past it frames are dropped (counted backlogFull). */
export const PORT_MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

export class PortDrops {
  /** The peer left with frames still in the backlog. */
  noPeer = 0;
  /** The backlog was at its byte bound. */
  backlogFull = 0;
  /** Still in the backlog when a shutdown's flush time ran out. */
  shutdown = 0;
}

export class PortCounters {
  /** Frames handed to the endpoint (its own counters say what became of them). */
  sent = 0;
  backlogFrames = 0;
  backlogBytes = 0;
  backlogPeakBytes = 0;
  /** Frames that waited in the backlog at least once. */
  deferred = 0;
  readonly dropped = new PortDrops();
}

export interface PortOptions {
  readonly maxBacklogBytes?: number;
}

export class Port {
  readonly name: string;
  readonly endpoint: FrameEndpoint;
  readonly counters = new PortCounters();
  readonly maxBacklogBytes: number;
  /** true when the port becomes congested, false when it can take frames straight through again. */
  readonly congestion = new Listeners<boolean>();
  #frames: Uint8Array[] = [];
  #vnet: number[] = [];
  #head = 0;
  #congested = false;
  #drainWaiters: (() => void)[] = [];

  constructor(endpoint: FrameEndpoint, options: PortOptions = {}) {
    this.name = endpoint.name;
    this.endpoint = endpoint;
    this.maxBacklogBytes = options.maxBacklogBytes ?? PORT_MAX_BACKLOG_BYTES;
    endpoint.onDrain = () => this.#pump();
    endpoint.events.on((e) => {
      if (e.type === 'disconnected') this.#dropBacklog('noPeer');
      else if (e.type === 'connected') this.#pump();
    });
  }

  /** Frames from the endpoint. */
  set onFrame(fn: (frame: Uint8Array, vnetHdrLen: number) => void) {
    this.endpoint.onFrame = fn;
  }

  get congested(): boolean {
    return this.#congested;
  }

  /**
   * Queues one frame for the endpoint, in order after any backlog. Returns
   * false only when it was dropped (counted here or by the endpoint).
   */
  send(frame: Uint8Array, vnetHdrLen: number): boolean {
    const ep = this.endpoint;
    if (vnetHdrLen > 0 && !ep.vnetHdr) {
      // A vnet header only goes to a side that carries the field.
      frame = frame.subarray(vnetHdrLen);
      vnetHdrLen = 0;
    }
    const c = this.counters;
    if (this.#head === this.#frames.length) {
      if (ep.writable || !ep.connected) {
        c.sent++;
        const ok = ep.send(frame, vnetHdrLen);
        if (!ep.writable && ep.connected) this.#setCongested(true);
        return ok;
      }
    }
    if (c.backlogBytes + frame.length > this.maxBacklogBytes) {
      c.dropped.backlogFull++;
      return false;
    }
    this.#frames.push(frame);
    this.#vnet.push(vnetHdrLen);
    c.backlogFrames++;
    c.backlogBytes += frame.length;
    c.deferred++;
    if (c.backlogBytes > c.backlogPeakBytes) c.backlogPeakBytes = c.backlogBytes;
    this.#setCongested(true);
    return true;
  }

  #pump(): void {
    const ep = this.endpoint;
    const c = this.counters;
    const frames = this.#frames;
    while (this.#head < frames.length && ep.writable) {
      const f = frames[this.#head]!;
      const v = this.#vnet[this.#head]!;
      frames[this.#head++] = EMPTY;
      c.backlogFrames--;
      c.backlogBytes -= f.length;
      c.sent++;
      ep.send(f, v);
    }
    if (this.#head === frames.length) this.#reset();
    else if (this.#head > 4096 && this.#head * 2 > frames.length) this.#compact();
    if (this.#head === this.#frames.length && (ep.writable || !ep.connected)) {
      this.#setCongested(false);
      const w = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const fn of w) fn();
    }
  }

  #compact(): void {
    this.#frames = this.#frames.slice(this.#head);
    this.#vnet = this.#vnet.slice(this.#head);
    this.#head = 0;
  }

  #reset(): void {
    this.#frames.length = 0;
    this.#vnet.length = 0;
    this.#head = 0;
  }

  #dropBacklog(reason: 'noPeer' | 'shutdown'): number {
    const n = this.#frames.length - this.#head;
    const c = this.counters;
    c.dropped[reason] += n;
    c.backlogFrames = 0;
    c.backlogBytes = 0;
    this.#reset();
    this.#pump();
    return n;
  }

  #setCongested(on: boolean): void {
    if (on === this.#congested) return;
    this.#congested = on;
    this.congestion.emit(on);
  }

  /**
   * Waits until the backlog has gone to the endpoint (or the peer left), at
   * most `timeoutMs`; what is still in the backlog then is dropped and
   * counted (shutdown). Resolves with that number.
   */
  async flush(timeoutMs: number): Promise<number> {
    if (this.#head < this.#frames.length && this.endpoint.connected) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        this.#drainWaiters.push(done);
      });
    }
    return this.#head < this.#frames.length ? this.#dropBacklog('shutdown') : 0;
  }

  status(): Record<string, unknown> {
    return { congested: this.#congested, ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

const EMPTY = new Uint8Array(0);
