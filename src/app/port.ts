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
// never reused and engines hand over their own copies, so no copy is made;
// a port whose writer passes the frame on too (a mirror) copies what it
// keeps (copyOnBacklog), since a later filter may rewrite the frame in place.

import { Listeners } from '../events.ts';
import { FrameFifo } from '../engine/frame-fifo.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';

/** How long an app's stop waits for its ports' backlogs to reach their peers. */
export const SHUTDOWN_FLUSH_MS = 10_000;

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
  /**
   * Copy a frame that must wait in the backlog. For a writer that passes the
   * frame on as well (a mirror): the chain's later filters may rewrite it in
   * place, and the mirror must send it as it was.
   */
  readonly copyOnBacklog?: boolean;
}

export class Port {
  readonly name: string;
  readonly endpoint: FrameEndpoint;
  readonly counters = new PortCounters();
  readonly maxBacklogBytes: number;
  /** true when the port becomes congested, false when it can take frames straight through again. */
  readonly congestion = new Listeners<boolean>();
  /** Frames the endpoint could not take yet; meta is the vnet length. */
  #backlog = new FrameFifo();
  #congested = false;
  readonly #copyOnBacklog: boolean;
  #drainWaiters: (() => void)[] = [];

  constructor(endpoint: FrameEndpoint, options: PortOptions = {}) {
    this.name = endpoint.name;
    this.endpoint = endpoint;
    this.maxBacklogBytes = options.maxBacklogBytes ?? PORT_MAX_BACKLOG_BYTES;
    this.#copyOnBacklog = options.copyOnBacklog === true;
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
    if (this.#backlog.length === 0) {
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
    // new Uint8Array(view) copies; a Buffer's slice() would not (it is subarray).
    this.#backlog.push(this.#copyOnBacklog ? new Uint8Array(frame) : frame, vnetHdrLen);
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
    const q = this.#backlog;
    while (q.length > 0 && ep.writable) {
      const f = q.shift();
      c.backlogFrames--;
      c.backlogBytes -= f.length;
      c.sent++;
      ep.send(f, q.lastMeta);
    }
    if (q.length === 0 && (ep.writable || !ep.connected)) {
      this.#setCongested(false);
      const w = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const fn of w) fn();
    }
  }

  #dropBacklog(reason: 'noPeer' | 'shutdown'): number {
    const n = this.#backlog.clear();
    const c = this.counters;
    c.dropped[reason] += n;
    c.backlogFrames = 0;
    c.backlogBytes = 0;
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
    if (this.#backlog.length > 0 && this.endpoint.connected) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        this.#drainWaiters.push(done);
      });
    }
    return this.#backlog.length > 0 ? this.#dropBacklog('shutdown') : 0;
  }

  status(): Record<string, unknown> {
    return { congested: this.#congested, ...this.counters, dropped: { ...this.counters.dropped } };
  }
}
