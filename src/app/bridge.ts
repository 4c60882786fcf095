// A transparent two-port bridge: frames from endpoint A go to B and back,
// with backpressure (a side that cannot keep up pauses the other's reads),
// per-endpoint accounting and an optional pcapng capture of both directions.
// It is the skeleton the recorder and the filter chain grow from.

import { type Clock, splitEpochMs, systemClock } from '../engine/wall-clock.ts';
import { CaptureSink } from '../io/capture-sink.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { createEndpoint } from '../io/open-endpoint.ts';
import { DIRECTION_INBOUND } from '../pcap/capture-record.ts';
import { LINKTYPE_ETHERNET } from '../packet/packet-view.ts';

export interface BridgeOptions {
  readonly a: string;
  readonly b: string;
  readonly capture?: string;
  readonly clock?: Clock;
  /** Sees every frame (vnet header stripped) before it is forwarded; side 0 = a, 1 = b. */
  readonly tap?: (side: 0 | 1, frame: Uint8Array) => void;
  /** Endpoint names (default 'a' and 'b'). */
  readonly names?: readonly [string, string];
}

export class Bridge {
  readonly a: FrameEndpoint;
  readonly b: FrameEndpoint;
  capture: CaptureSink | null = null;
  readonly startedMs: number;
  #clock: Clock;
  #capturePath: string | undefined;
  #tap: ((side: 0 | 1, frame: Uint8Array) => void) | undefined;

  constructor(options: BridgeOptions) {
    this.a = createEndpoint(options.a, { name: options.names?.[0] ?? 'a' });
    this.b = createEndpoint(options.b, { name: options.names?.[1] ?? 'b' });
    this.#tap = options.tap;
    this.#clock = options.clock ?? systemClock;
    this.#capturePath = options.capture;
    this.startedMs = this.#clock.nowMs();
  }

  async start(): Promise<void> {
    if (this.#capturePath !== undefined) {
      const sink = await CaptureSink.create(this.#capturePath, { comment: `netrr bridge ${this.a.spec.text} <-> ${this.b.spec.text}` });
      sink.addInterface({ linkType: LINKTYPE_ETHERNET, name: 'a', description: `frames received from ${this.a.spec.text}` });
      sink.addInterface({ linkType: LINKTYPE_ETHERNET, name: 'b', description: `frames received from ${this.b.spec.text}` });
      this.capture = sink;
    }
    this.#wire(this.a, this.b, 0);
    this.#wire(this.b, this.a, 1);
    await this.a.start();
    await this.b.start();
  }

  /** Pauses or resumes reading on both sides (e.g. while a log sink catches up). */
  setPaused(paused: boolean): void {
    for (const ep of [this.a, this.b]) {
      if (paused) ep.pause();
      else ep.resume();
    }
  }

  #wire(from: FrameEndpoint, to: FrameEndpoint, captureIf: 0 | 1): void {
    const ts = { sec: 0, nsec: 0 };
    const meta = { flags: DIRECTION_INBOUND };
    const stripVnet = from.vnetHdr && !to.vnetHdr;
    from.onFrame = (frame, vnetLen) => {
      this.#tap?.(captureIf, vnetLen > 0 ? frame.subarray(vnetLen) : frame);
      const cap = this.capture;
      if (cap !== null) {
        splitEpochMs(this.#clock.nowMs(), ts);
        cap.write(captureIf, ts.sec, ts.nsec, vnetLen > 0 ? frame.subarray(vnetLen) : frame, meta);
      }
      // A vnet header only goes to a side that carries the field; a side
      // that has the field but receives a plain frame gets vnet_hdr_len 0.
      if (stripVnet) to.send(frame.subarray(vnetLen), 0);
      else to.send(frame, vnetLen);
      if (!to.writable && to.connected) from.pause();
    };
    to.onDrain = () => from.resume();
  }

  status(): Record<string, unknown> {
    return {
      uptimeMs: Math.round(this.#clock.nowMs() - this.startedMs),
      endpoints: [this.a.status(), this.b.status()],
      capture: this.capture?.status() ?? null,
    };
  }

  async stop(): Promise<void> {
    await Promise.all([this.a.close(), this.b.close()]);
    await this.capture?.close();
  }
}
