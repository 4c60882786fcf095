// `-f buffer`: holds frames until released, in one of three modes.
//  - epochs (default): numbered epochs committed or aborted by the controller
//    (epoch-buffer.ts), with limits and an overflow policy.
//  - plug: Linux sch_plug exactly (plug-queue.ts): buffer-plug,
//    buffer-release-one, buffer-release-indefinite, buffer-limit.
//  - interval: QEMU filter-buffer parity: everything held is released every
//    `interval` µs; status off releases at once (net/filter-buffer.c).
// Every protocol is held (Xen's netbuf redirects only `proto ip`).

import { type CounterTree, numericFields } from '../counter-tree.ts';
import { NetrrError } from '../../errors.ts';
import { EPOCH_HARD_LIMIT_BYTES, EpochBuffer, type OverflowPolicy } from './epoch-buffer.ts';
import { type ColoEvent, FILTER_CONSUMED, type Filter, type FilterCommand, type FilterContext, type FilterDirection, type FilterQueue, type FilterResult, metaDir, metaVnet, packMeta } from './filter.ts';
import { HoldHistogram } from './hold-histogram.ts';
import { PLUG_DEFAULT_LIMIT_BYTES, PlugQueue } from './plug-queue.ts';

export type BufferMode = 'epochs' | 'plug' | 'interval';

export interface BufferConfig {
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  readonly mode: BufferMode;
  /** epochs */
  readonly limitFrames: number;
  readonly limitBytes: number;
  readonly overflow: OverflowPolicy;
  readonly hardLimitBytes: number;
  /** plug: the byte limit (sch_plug's `limit`). */
  readonly plugLimitBytes: number;
  /** interval, in µs (QEMU's unit). */
  readonly intervalUs: number;
  /** What a shutdown does with held output: drop it (the default: it was never committed) or release it. */
  readonly onShutdown: 'drop' | 'release';
}

export const BUFFER_DEFAULTS = {
  mode: 'epochs',
  limitFrames: 100_000,
  limitBytes: 64 * 1024 * 1024,
  overflow: 'drop-tail',
  hardLimitBytes: EPOCH_HARD_LIMIT_BYTES,
  plugLimitBytes: PLUG_DEFAULT_LIMIT_BYTES,
  intervalUs: 0,
  onShutdown: 'drop',
} as const;

export class BufferFilter implements Filter {
  readonly kind = 'buffer';
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly config: BufferConfig;
  readonly tickMs: number | undefined;
  readonly hold = new HoldHistogram();
  readonly commands: Record<string, FilterCommand>;
  /** Frames dropped at shutdown (onShutdown drop) or released then (onShutdown release). */
  droppedAtShutdown = 0;
  #ctx: FilterContext;
  #epochs: EpochBuffer | null = null;
  #plug: PlugQueue | null = null;
  /** When the current call began (plug releases happen inside receive and commands). */
  #nowMs = 0;

  constructor(config: BufferConfig, ctx: FilterContext) {
    this.config = config;
    this.id = config.id;
    this.queue = config.queue;
    this.status = config.status;
    this.#ctx = ctx;
    const pass = (frame: Uint8Array, meta: number): void => ctx.passOn(metaDir(meta), frame, metaVnet(meta));
    if (config.mode === 'epochs') {
      this.#epochs = new EpochBuffer(config, {
        release: (frame, meta, heldMs) => {
          this.hold.add(heldMs);
          pass(frame, meta);
        },
        overflow: (on) => {
          ctx.emit('BUFFER_OVERFLOW', { filter: this.id, on, policy: config.overflow, backlogFrames: this.#epochs!.backlogFrames, backlogBytes: this.#epochs!.backlogBytes });
          if (config.overflow === 'backpressure') ctx.holdGuest(on);
          else if (on) ctx.requestCheckpoint('buffer-overflow', { filter: this.id, epoch: this.#epochs!.openEpoch });
        },
      });
    } else {
      // plug and interval share sch_plug's FIFO; interval releases it whole on each tick.
      this.#plug = new PlugQueue((frame, meta, arrivedMs) => {
        this.hold.add(this.#nowMs - arrivedMs);
        pass(frame, meta);
      }, config.mode === 'plug' ? config.plugLimitBytes : Number.MAX_SAFE_INTEGER);
    }
    this.tickMs = config.mode === 'interval' ? config.intervalUs / 1000 : undefined;
    this.commands = this.#makeCommands();
  }

  receive(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number, nowMs: number): FilterResult {
    this.#nowMs = nowMs;
    const meta = packMeta(dir, vnetHdrLen);
    if (this.#epochs !== null) {
      this.#epochs.enqueue(frame, meta, nowMs);
      return FILTER_CONSUMED; // held or dropped (counted): either way the chain stops here
    }
    this.#plug!.enqueue(frame, meta, nowMs); // held, released or tail-dropped (counted)
    return FILTER_CONSUMED;
  }

  tick(nowMs: number): void {
    this.#flushAll(nowMs);
  }

  statusChanged(nowMs: number): void {
    // QEMU's filter-buffer flushes when turned off; so does every mode here (nothing stays stuck behind a disabled filter).
    if (!this.status) this.#flushAll(nowMs);
  }

  colo(event: ColoEvent, nowMs: number): void {
    // QEMU's default handler: failover turns the filter off, which flushes it.
    if (event === 'failover' && this.status) {
      this.status = false;
      this.statusChanged(nowMs);
    }
  }

  #flushAll(nowMs: number): number {
    this.#nowMs = nowMs;
    if (this.#epochs !== null) return this.#epochs.releaseAll(nowMs);
    return this.#plug!.drain((frame, meta, arrivedMs) => {
      this.hold.add(nowMs - arrivedMs);
      this.#ctx.passOn(metaDir(meta), frame, metaVnet(meta));
    });
  }

  shutdown(nowMs: number): void {
    if (this.config.onShutdown === 'release') {
      this.#flushAll(nowMs);
      return;
    }
    if (this.#epochs !== null) this.droppedAtShutdown += this.#epochs.abort(Number.MIN_SAFE_INTEGER);
    else this.droppedAtShutdown += this.#plug!.drain(() => {});
  }

  #makeCommands(): Record<string, FilterCommand> {
    const need = (mode: BufferMode, cmd: string): void => {
      if (this.config.mode !== mode) throw new NetrrError('ERR_BAD_OPTION', `${cmd}: buffer '${this.id}' is in mode ${this.config.mode}, not ${mode}`);
    };
    const epochArg = (a: Record<string, unknown>): number => {
      const e = a.epoch;
      if (typeof e !== 'number' || !Number.isInteger(e)) throw new NetrrError('ERR_BAD_OPTION', `buffer '${this.id}': "epoch" must be an integer`);
      return e;
    };
    return {
      'epoch-begin': () => {
        need('epochs', 'epoch-begin');
        const closed = this.#epochs!.openEpoch;
        return { epoch: this.#epochs!.epochBegin(), closed };
      },
      'epoch-commit': (a, nowMs) => {
        need('epochs', 'epoch-commit');
        const epoch = epochArg(a);
        const frames = this.#epochs!.commit(epoch, nowMs);
        this.#ctx.emit('EPOCH_COMMITTED', { filter: this.id, epoch, frames });
        return { epoch, released: frames };
      },
      'epoch-abort': (a) => {
        need('epochs', 'epoch-abort');
        const epoch = epochArg(a);
        const frames = this.#epochs!.abort(epoch);
        this.#ctx.emit('EPOCH_ABORTED', { filter: this.id, epoch, frames, open: this.#epochs!.openEpoch });
        return { epoch, dropped: frames, open: this.#epochs!.openEpoch };
      },
      'buffer-plug': () => (need('plug', 'buffer-plug'), this.#plug!.buffer(), {}),
      'buffer-release-one': (_a, nowMs) => {
        need('plug', 'buffer-release-one');
        this.#nowMs = nowMs;
        const before = this.#plug!.counters.released;
        this.#plug!.releaseOne();
        return { released: this.#plug!.counters.released - before };
      },
      'buffer-release-indefinite': (_a, nowMs) => {
        need('plug', 'buffer-release-indefinite');
        this.#nowMs = nowMs;
        const before = this.#plug!.counters.released;
        this.#plug!.releaseIndefinite();
        return { released: this.#plug!.counters.released - before };
      },
      'buffer-limit': (a) => {
        need('plug', 'buffer-limit');
        const b = a.bytes;
        if (typeof b !== 'number' || !Number.isInteger(b) || b < 0) throw new NetrrError('ERR_BAD_OPTION', `buffer-limit: "bytes" must be a non-negative integer`);
        this.#plug!.setLimit(b);
        return { limit: b };
      },
    };
  }

  counterTree(): CounterTree {
    // count, sumMs and buckets (le<bound>ms): /metrics exports it as a histogram in seconds (metrics-text.ts).
    const hold = { count: this.hold.total, sumMs: this.hold.sumMs, ...numericFields({ buckets: this.hold.toJSON().buckets as object }) };
    const e = this.#epochs;
    if (e !== null) return { backlogFrames: e.backlogFrames, backlogBytes: e.backlogBytes, ...numericFields(e.counters), droppedAtShutdown: this.droppedAtShutdown, holdTime: hold };
    const p = this.#plug!;
    return { backlogFrames: p.backlog, backlogBytes: p.backlogBytes, ...numericFields(p.counters), droppedAtShutdown: this.droppedAtShutdown, holdTime: hold };
  }

  report(): Record<string, unknown> {
    const base = { id: this.id, kind: this.kind, mode: this.config.mode, queue: this.queue, status: this.status ? 'on' : 'off', holdTime: this.hold.toJSON(), droppedAtShutdown: this.droppedAtShutdown };
    const e = this.#epochs;
    if (e !== null) {
      return {
        ...base,
        backlogFrames: e.backlogFrames,
        backlogBytes: e.backlogBytes,
        openEpoch: e.openEpoch,
        outstanding: e.outstanding(),
        overflowing: e.overflowing,
        limits: { frames: this.config.limitFrames, bytes: this.config.limitBytes, overflow: this.config.overflow, hardBytes: this.config.hardLimitBytes },
        ...e.counters,
        dropped: { ...e.counters.dropped },
      };
    }
    const p = this.#plug!;
    return {
      ...base,
      backlogFrames: p.backlog,
      backlogBytes: p.backlogBytes,
      ...(this.config.mode === 'plug' ? { limit: p.limit, plug: { throttled: p.throttled, indefinite: p.unplugIndefinite, pktsCurrentEpoch: p.pktsCurrentEpoch, pktsLastEpoch: p.pktsLastEpoch, pktsToRelease: p.pktsToRelease } } : { intervalUs: this.config.intervalUs }),
      enqueued: p.counters.enqueued,
      released: p.counters.released,
      dropped: { overlimit: p.counters.overlimits },
    };
  }
}
