// `-f dump,file=F[,maxlen=N]`: QEMU filter-dump (reference qemu-interop.md §6)
// written as pcapng with one interface per direction, the vnet header
// stripped (as QEMU ≥ 9.0 does), frames cut to maxlen with their original
// length kept. Always passes the frame on. The file is written
// asynchronously and bounded (CaptureSink): a disk that falls behind costs
// counted captures, never the chain's traffic.

import type { CounterTree } from '../../engine/counter-tree.ts';
import { FILTER_PASS, type Filter, type FilterDirection, type FilterQueue, type FilterResult } from '../../engine/filters/filter.ts';
import type { DumpConfig } from '../../engine/filters/filter-spec.ts';
import { CaptureSink } from '../../io/capture-sink.ts';
import { DIRECTION_INBOUND, DIRECTION_OUTBOUND } from '../../pcap/capture-record.ts';
import { LINKTYPE_ETHERNET } from '../../packet/packet-view.ts';

export class DumpFilter implements Filter {
  readonly kind = 'dump';
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly commands = {};
  readonly config: DumpConfig;
  #sink: CaptureSink;
  readonly #toGuest = { flags: DIRECTION_INBOUND };
  readonly #fromGuest = { flags: DIRECTION_OUTBOUND };

  private constructor(config: DumpConfig, sink: CaptureSink) {
    this.config = config;
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.#sink = sink;
  }

  reopen(): Promise<void> {
    return this.#sink.reopen();
  }

  static async open(config: DumpConfig, guest: string, network: string): Promise<DumpFilter> {
    const sink = await CaptureSink.create(config.file, { comment: `netrr chain filter '${config.id}' (dump) between ${guest} and ${network}` });
    // Interface 0: frames the guest sent (rx in QEMU's terms); 1: frames toward the guest (tx).
    sink.addInterface({ linkType: LINKTYPE_ETHERNET, snapLen: config.maxlen, name: 'from-guest', description: `rx: sent by the guest (${guest})` });
    sink.addInterface({ linkType: LINKTYPE_ETHERNET, snapLen: config.maxlen, name: 'to-guest', description: `tx: toward the guest (from ${network})` });
    return new DumpFilter(config, sink);
  }

  receive(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number, nowMs: number): FilterResult {
    const data = vnetHdrLen > 0 ? frame.subarray(vnetHdrLen) : frame;
    const cut = data.length > this.config.maxlen ? data.subarray(0, this.config.maxlen) : data;
    this.#sink.write(dir === 'rx' ? 0 : 1, nowMs, cut, dir === 'rx' ? this.#fromGuest : this.#toGuest, data.length);
    return FILTER_PASS;
  }

  counterTree(): CounterTree {
    const s = this.#sink;
    return { captured: s.captured, droppedOverflow: s.droppedOverflow, droppedWriteError: s.droppedWriteError };
  }

  report(): Record<string, unknown> {
    return { id: this.id, kind: this.kind, queue: this.queue, status: this.status ? 'on' : 'off', file: this.config.file, maxlen: this.config.maxlen, ...this.#sink.status() };
  }

  async close(): Promise<void> {
    await this.#sink.close();
  }
}
