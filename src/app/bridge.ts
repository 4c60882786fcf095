// A transparent two-port bridge: frames from endpoint A go to B and back. It
// is a chain with no filters (src/app/chain.ts): each side writes through a
// Port, each side's reads pause while the other side's port is congested,
// every frame is accounted for, and --capture records both directions as
// received.

import type { Clock } from '../io/clock.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { Chain } from './chain.ts';
import type { PauseGroup } from './pause-group.ts';
import type { Port } from './port.ts';

export { SHUTDOWN_FLUSH_MS } from './port.ts';

export interface BridgeOptions {
  readonly a: string;
  readonly b: string;
  readonly capture?: string;
  readonly clock?: Clock;
  /** Endpoint names (default 'a' and 'b'). */
  readonly names?: readonly [string, string];
}

export class Bridge extends Chain {
  override readonly kind = 'bridge';
  readonly startedMs: number;

  constructor(options: BridgeOptions) {
    super({
      guest: options.a,
      network: options.b,
      guestName: options.names?.[0] ?? 'a',
      networkName: options.names?.[1] ?? 'b',
      filters: [],
      ...(options.capture !== undefined ? { capture: options.capture } : {}),
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    this.startedMs = this.clock.nowMs();
  }

  get a(): FrameEndpoint {
    return this.guest;
  }

  get b(): FrameEndpoint {
    return this.network;
  }

  /** ports[0] writes to a, ports[1] to b. */
  get ports(): readonly [Port, Port] {
    return [this.guestPort, this.networkPort];
  }

  /** pause[0] pauses reading a (while b's port is congested), pause[1] reading b. */
  get pause(): readonly [PauseGroup, PauseGroup] {
    return [this.guestReads, this.networkReads];
  }

  override status(): Record<string, unknown> {
    const { counters: _c, filters: _f, ...rest } = super.status();
    return { uptimeMs: Math.round(this.clock.nowMs() - this.startedMs), ...rest };
  }
}
