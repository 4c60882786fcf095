// `-f mirror,outdev=SPEC[,vnet_hdr_support=on]`: QEMU filter-mirror
// (reference qemu-interop.md §4): a copy of every frame it sees goes to
// outdev in QEMU's framing, and the frame passes on. Unlike QEMU's, which
// blocks the main loop on a slow reader, the copy goes through a port with a
// bounded backlog and never pauses the chain: past the bound, copies are
// dropped and counted (`dropped.backlogFull` of the port).

import { type CounterTree, numericFields } from '../../engine/counter-tree.ts';
import { FILTER_PASS, type Filter, type FilterDirection, type FilterQueue, type FilterResult } from '../../engine/filters/filter.ts';
import type { MirrorSpec } from '../../engine/filters/filter-spec.ts';
import { withVnet } from '../../io/endpoint-spec.ts';
import type { FrameEndpoint } from '../../io/frame-endpoint.ts';
import { createEndpoint } from '../../io/open-endpoint.ts';
import { Port } from '../port.ts';

/** A mirror's copies waiting for a slow reader, at most (then dropped, counted). */
export const MIRROR_MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

/** A mirror's configuration is its parsed -f spec. */
export type MirrorConfig = Omit<MirrorSpec, 'kind'>;

export class MirrorFilter implements Filter {
  readonly kind = 'mirror';
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly commands = {};
  readonly out: FrameEndpoint;
  readonly port: Port;
  /** Copies made (handed to the port). */
  mirrored = 0;

  constructor(config: MirrorConfig) {
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.out = createEndpoint(withVnet(config.outdev, config.vnetHdr), { name: `${config.id}.outdev` });
    // The frame goes on down the chain, where a rewriter may change it in place: what waits here is a copy.
    this.port = new Port(this.out, { maxBacklogBytes: MIRROR_MAX_BACKLOG_BYTES, copyOnBacklog: true });
  }

  async start(): Promise<void> {
    await this.out.start();
  }

  get endpoints(): FrameEndpoint[] {
    return [this.out];
  }

  receive(_dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number): FilterResult {
    this.mirrored++;
    this.port.send(frame, vnetHdrLen);
    return FILTER_PASS;
  }

  counterTree(): CounterTree {
    return { mirrored: this.mirrored, outdev: numericFields(this.out.counters), port: numericFields(this.port.counters) };
  }

  report(): Record<string, unknown> {
    return { id: this.id, kind: this.kind, queue: this.queue, status: this.status ? 'on' : 'off', mirrored: this.mirrored, outdev: this.out.status(), port: this.port.status() };
  }

  async close(): Promise<void> {
    await this.port.flush(1000);
    await this.out.close();
  }
}
