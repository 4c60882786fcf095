// A transparent two-port bridge: frames from endpoint A go to B and back. It
// is a chain with no filters (src/app/chain.ts): each side writes through a
// Port, each side's reads pause while the other side's port is congested,
// every frame is accounted for, and --capture records both directions as
// received.

import { type Clock, systemClock } from '../engine/wall-clock.ts';
import type { CaptureSink } from '../io/capture-sink.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { Chain } from './chain.ts';
import type { PauseGroup } from './pause-group.ts';
import { type Port, SHUTDOWN_FLUSH_MS } from './port.ts';

export { SHUTDOWN_FLUSH_MS } from './port.ts';

export interface BridgeOptions {
  readonly a: string;
  readonly b: string;
  readonly capture?: string;
  readonly clock?: Clock;
  /** Endpoint names (default 'a' and 'b'). */
  readonly names?: readonly [string, string];
}

export class Bridge {
  readonly chain: Chain;
  readonly startedMs: number;
  #clock: Clock;

  constructor(options: BridgeOptions) {
    this.chain = new Chain({
      guest: options.a,
      network: options.b,
      guestName: options.names?.[0] ?? 'a',
      networkName: options.names?.[1] ?? 'b',
      filters: [],
      ...(options.capture !== undefined ? { capture: options.capture } : {}),
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    this.#clock = options.clock ?? systemClock;
    this.startedMs = this.#clock.nowMs();
  }

  get a(): FrameEndpoint {
    return this.chain.guest;
  }

  get b(): FrameEndpoint {
    return this.chain.network;
  }

  /** ports[0] writes to a, ports[1] to b. */
  get ports(): readonly [Port, Port] {
    return [this.chain.guestPort, this.chain.networkPort];
  }

  /** pause[0] pauses reading a (while b's port is congested), pause[1] reading b. */
  get pause(): readonly [PauseGroup, PauseGroup] {
    return [this.chain.guestReads, this.chain.networkReads];
  }

  get capture(): CaptureSink | null {
    return this.chain.capture;
  }

  start(): Promise<void> {
    return this.chain.start();
  }

  status(): Record<string, unknown> {
    const { counters: _c, filters: _f, ...rest } = this.chain.status();
    return { uptimeMs: Math.round(this.#clock.nowMs() - this.startedMs), ...rest };
  }

  /** Delivers what the ports still hold (at most flushMs), then closes both sides. */
  stop(flushMs = SHUTDOWN_FLUSH_MS): Promise<void> {
    return this.chain.stop(flushMs);
  }
}
