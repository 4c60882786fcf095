// A transparent two-port bridge: frames from endpoint A go to B and back.
// Each side is a Port (vnet conversion, a drain-paced backlog); each side's
// reads are paused while the other side's port is congested (a PauseGroup
// per direction, so a hold on one direction never pauses the other), with
// per-endpoint accounting and an optional pcapng capture of both directions.

import { type Clock, splitEpochMs, systemClock } from '../engine/wall-clock.ts';
import { CaptureSink } from '../io/capture-sink.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { createEndpoint } from '../io/open-endpoint.ts';
import { DIRECTION_INBOUND } from '../pcap/capture-record.ts';
import { LINKTYPE_ETHERNET } from '../packet/packet-view.ts';
import { PauseGroup } from './pause-group.ts';
import { Port } from './port.ts';

/** How long a stop waits for the ports' backlogs to reach their peers. */
export const SHUTDOWN_FLUSH_MS = 10_000;

export type Side = 0 | 1;

export interface BridgeOptions {
  readonly a: string;
  readonly b: string;
  readonly capture?: string;
  readonly clock?: Clock;
  /** Endpoint names (default 'a' and 'b'). */
  readonly names?: readonly [string, string];
}

export class Bridge {
  readonly a: FrameEndpoint;
  readonly b: FrameEndpoint;
  /** ports[0] writes to a, ports[1] to b. */
  readonly ports: readonly [Port, Port];
  /** pause[0] pauses reading a (while b's port is congested), pause[1] reading b. */
  readonly pause: readonly [PauseGroup, PauseGroup];
  capture: CaptureSink | null = null;
  readonly startedMs: number;
  /** Frames still in a port's backlog when a stop's flush time ran out. */
  unflushed = 0;
  #clock: Clock;
  #capturePath: string | undefined;

  constructor(options: BridgeOptions) {
    this.a = createEndpoint(options.a, { name: options.names?.[0] ?? 'a' });
    this.b = createEndpoint(options.b, { name: options.names?.[1] ?? 'b' });
    this.ports = [new Port(this.a), new Port(this.b)];
    this.pause = [new PauseGroup([this.a]), new PauseGroup([this.b])];
    this.pause[0].watch(this.ports[1]);
    this.pause[1].watch(this.ports[0]);
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
    this.#wire(this.a, 0);
    this.#wire(this.b, 1);
    await this.a.start();
    await this.b.start();
  }

  /** Holds (or releases) reading on both sides for a reason of the caller's. */
  hold(reason: string, on: boolean): void {
    for (const g of this.pause) {
      if (on) g.hold(reason);
      else g.release(reason);
    }
  }

  #wire(from: FrameEndpoint, side: Side): void {
    const ts = { sec: 0, nsec: 0 };
    const meta = { flags: DIRECTION_INBOUND };
    const to = this.ports[side === 0 ? 1 : 0];
    from.onFrame = (frame, vnetLen) => {
      const cap = this.capture;
      if (cap !== null) {
        splitEpochMs(this.#clock.nowMs(), ts);
        cap.write(side, ts.sec, ts.nsec, vnetLen > 0 ? frame.subarray(vnetLen) : frame, meta);
      }
      to.send(frame, vnetLen);
    };
  }

  status(): Record<string, unknown> {
    return {
      uptimeMs: Math.round(this.#clock.nowMs() - this.startedMs),
      endpoints: [this.a.status(), this.b.status()].map((s, i) => ({ ...s, port: this.ports[i]!.status(), readHolds: this.pause[i]!.status() })),
      capture: this.capture?.status() ?? null,
      unflushed: this.unflushed,
    };
  }

  /** Delivers what the ports still hold (at most SHUTDOWN_FLUSH_MS), then closes both sides. */
  async stop(flushMs = SHUTDOWN_FLUSH_MS): Promise<void> {
    this.hold('stopping', true);
    const left = await Promise.all(this.ports.map((p) => p.flush(flushMs)));
    this.unflushed += left.reduce((s, n) => s + n, 0);
    await Promise.all([this.a.close(), this.b.close()]);
    await this.capture?.close();
  }
}
