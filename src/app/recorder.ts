// netrr record: a transparent netdev-in-the-middle between a guest and its
// upstream that logs both directions to a crash-safe netrr log. Port 0 is the
// guest, port 1 the upstream; each frame is logged as received from its port,
// before it is forwarded. When the disk falls behind, both sides pause.

import { DIR_FROM_PORT } from '../codec/netrr-log.ts';
import { type Clock, systemClock } from '../engine/wall-clock.ts';
import { LogWriter, type SyncPolicy } from '../io/log-writer.ts';
import { Bridge } from './bridge.ts';

export const PORT_GUEST = 0;
export const PORT_UPSTREAM = 1;

export interface RecorderOptions {
  readonly guest: string;
  readonly upstream: string;
  readonly log: string;
  readonly sync?: SyncPolicy;
  readonly segmentBytes?: number;
  readonly clock?: Clock;
}

export class Recorder {
  readonly bridge: Bridge;
  log: LogWriter | null = null;
  #opts: RecorderOptions;

  constructor(opts: RecorderOptions) {
    this.#opts = opts;
    this.bridge = new Bridge({
      a: opts.guest,
      b: opts.upstream,
      names: ['guest', 'upstream'],
      clock: opts.clock ?? systemClock,
      tap: (side, frame) => this.log?.append(side === 0 ? PORT_GUEST : PORT_UPSTREAM, DIR_FROM_PORT, 0, frame),
    });
  }

  async start(): Promise<void> {
    const o: { segmentBytes?: number; sync?: SyncPolicy; clock?: Clock } = {};
    if (this.#opts.segmentBytes !== undefined) o.segmentBytes = this.#opts.segmentBytes;
    if (this.#opts.sync !== undefined) o.sync = this.#opts.sync;
    if (this.#opts.clock !== undefined) o.clock = this.#opts.clock;
    this.log = await LogWriter.create(this.#opts.log, o);
    this.log.onPressure = (high) => this.bridge.setPaused(high);
    await this.bridge.start();
  }

  status(): Record<string, unknown> {
    return { ...this.bridge.status(), log: this.log?.status() ?? null };
  }

  async stop(): Promise<void> {
    await this.bridge.stop();
    await this.log?.close();
  }
}
