// `-f redirector,indev=SPEC,outdev=SPEC[,vnet_hdr_support=on]`: QEMU
// filter-redirector (reference qemu-interop.md §4).
//  - Out path: while outdev has a peer, a frame the redirector sees goes
//    there and is consumed; with no peer it passes on untouched (QEMU's rule).
//  - In path: each frame from indev is injected after the redirector: toward
//    the guest for queue=tx, toward the network for queue=rx, both for
//    queue=all (QEMU duplicates it).
// Unlike QEMU 7.2, a reconnecting indev peer is read again with fresh framing,
// and status off stops the injection too.

import { type CounterTree, numericFields } from '../../engine/counter-tree.ts';
import { FILTER_CONSUMED, FILTER_PASS, type Filter, type FilterContext, type FilterDirection, type FilterQueue, type FilterResult } from '../../engine/filters/filter.ts';
import type { RedirectorSpec } from '../../engine/filters/filter-spec.ts';
import { withVnet } from '../../io/endpoint-spec.ts';
import type { FrameEndpoint } from '../../io/frame-endpoint.ts';
import { createEndpoint } from '../../io/open-endpoint.ts';
import { Port } from '../port.ts';
import { MIRROR_MAX_BACKLOG_BYTES } from './mirror-filter.ts';

/** A redirector's configuration is its parsed -f spec. */
export type RedirectorConfig = Omit<RedirectorSpec, 'kind'>;

export class RedirectorFilter implements Filter {
  readonly kind = 'redirector';
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly commands = {};
  readonly in: FrameEndpoint | null;
  readonly out: FrameEndpoint | null;
  readonly port: Port | null;
  redirected = 0;
  passedNoPeer = 0;
  injected = 0;
  /** indev frames that arrived while the filter was off (not injected, counted). */
  droppedOff = 0;

  constructor(config: RedirectorConfig, ctx: FilterContext) {
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.in = config.indev !== undefined ? createEndpoint(withVnet(config.indev, config.vnetHdr), { name: `${config.id}.indev` }) : null;
    this.out = config.outdev !== undefined ? createEndpoint(withVnet(config.outdev, config.vnetHdr), { name: `${config.id}.outdev` }) : null;
    this.port = this.out !== null ? new Port(this.out, { maxBacklogBytes: MIRROR_MAX_BACKLOG_BYTES }) : null;
    const dirs: FilterDirection[] = config.queue === 'all' ? ['tx', 'rx'] : [config.queue];
    // A slow outdev reader holds the side the redirected frames come from (QEMU blocks its main loop instead): nothing is lost.
    this.port?.congestion.on((on) => {
      if (config.queue !== 'tx') ctx.holdGuest(on);
      if (config.queue !== 'rx') ctx.holdNetwork(on);
    });
    if (this.in !== null) {
      this.in.onFrame = (frame, vnetHdrLen) => {
        if (!this.status) {
          this.droppedOff++;
          return;
        }
        for (const d of dirs) {
          this.injected++;
          ctx.passOn(d, frame, vnetHdrLen);
        }
      };
    }
  }

  get endpoints(): FrameEndpoint[] {
    return [...(this.in !== null ? [this.in] : []), ...(this.out !== null ? [this.out] : [])];
  }

  async start(): Promise<void> {
    for (const ep of this.endpoints) await ep.start();
  }

  receive(_dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number): FilterResult {
    if (this.port === null || !this.port.endpoint.connected) {
      this.passedNoPeer++;
      return FILTER_PASS;
    }
    this.redirected++;
    this.port.send(frame, vnetHdrLen);
    return FILTER_CONSUMED;
  }

  counterTree(): CounterTree {
    const t: Record<string, number | CounterTree> = { redirected: this.redirected, passedNoPeer: this.passedNoPeer, injected: this.injected, droppedOff: this.droppedOff };
    if (this.in !== null) t.indev = numericFields(this.in.counters);
    if (this.out !== null) t.outdev = numericFields(this.out.counters);
    if (this.port !== null) t.port = numericFields(this.port.counters);
    return t;
  }

  report(): Record<string, unknown> {
    return {
      id: this.id,
      kind: this.kind,
      queue: this.queue,
      status: this.status ? 'on' : 'off',
      redirected: this.redirected,
      passedNoPeer: this.passedNoPeer,
      injected: this.injected,
      droppedOff: this.droppedOff,
      endpoints: this.endpoints.map((e) => e.status()),
      ...(this.port !== null ? { port: this.port.status() } : {}),
    };
  }

  async close(): Promise<void> {
    await this.port?.flush(1000);
    for (const ep of this.endpoints) await ep.close();
  }
}
