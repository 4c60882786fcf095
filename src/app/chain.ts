// netrr chain: an ordered list of filters between a guest-side and a
// network-side endpoint, with QEMU's filter semantics (reference
// qemu-interop.md §3). Filters sit on the network side as QEMU's sit on the
// netdev: a frame from the network (tx) walks them head → tail, a frame from
// the guest (rx) tail → head; a filter whose queue does not match or whose
// status is off is skipped; a consumed frame is passed on later from the
// filter after the one that consumed it. Each side writes through a Port and
// each side's reads pause while the other side's port is congested, or while
// a filter holds the guest (a buffer in backpressure mode).

import { NetrrError } from '../errors.ts';
import { type CounterTree, numericFields } from '../engine/counter-tree.ts';
import { Listeners } from '../events.ts';
import { type App, type AppCommand, type AppEvent, forwardEndpoints } from './app.ts';
import { type Clock, systemClock } from '../io/clock.ts';
import { CaptureSink } from '../io/capture-sink.ts';
import { DIRECTION_INBOUND } from '../pcap/capture-record.ts';
import { LINKTYPE_ETHERNET } from '../packet/packet-view.ts';
import { BufferFilter } from '../engine/filters/buffer-filter.ts';
import { RewriterFilter } from '../engine/filters/rewriter-filter.ts';
import { type ColoEvent, FILTER_CONSUMED, type Filter, type FilterContext, type FilterDirection } from '../engine/filters/filter.ts';
import type { FilterSpec } from '../engine/filters/filter-spec.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { createEndpoint } from '../io/open-endpoint.ts';
import { DumpFilter } from './filters/dump-filter.ts';
import { MirrorFilter } from './filters/mirror-filter.ts';
import { RecordFilter } from './filters/record-filter.ts';
import { RedirectorFilter } from './filters/redirector-filter.ts';
import { parseSyncPolicy } from '../io/log-writer.ts';
import { LinkWatch, parseLinkSpec } from '../io/link-watch.ts';
import { PauseGroup } from './pause-group.ts';
import { Port, SHUTDOWN_FLUSH_MS } from './port.ts';

export interface ChainOptions {
  readonly guest: string;
  readonly network: string;
  readonly filters: readonly FilterSpec[];
  /** The sides' names in events and status (default 'guest' and 'network'; the recorder says 'upstream', the bridge 'a' and 'b'). */
  readonly guestName?: string;
  readonly networkName?: string;
  /** A pcapng capture of every frame as each side receives it, before any filter (the bridge's --capture). */
  readonly capture?: string;
  readonly clock?: Clock;
  /** `IFACE[,after-ms=N]`: the COLO link; its carrier lost for that long delivers failover (link-watch.ts). */
  readonly failoverLink?: string;
}

export class ChainCounters {
  /** Frames that left the last filter toward each side. */
  deliveredToGuest = 0;
  deliveredToNetwork = 0;
  /** Frames consumed by a filter (held, or dropped by it with its own reason). */
  consumed = 0;
}

/** Filter commands the control socket offers, with their help (each answered by the filter that has it). */
const FILTER_COMMANDS: Record<string, string> = {
  'epoch-begin': 'close the open epoch of a buffer (mode epochs) and open the next: {"filter"?} → {"epoch", "closed"}',
  'epoch-commit': 'release every closed epoch up to and including {"epoch": N} in order ({"filter"?})',
  'epoch-abort': 'discard epoch {"epoch": N} and every later one, the open one too ({"filter"?})',
  'buffer-plug': 'sch_plug TCQ_PLUG_BUFFER: start a new epoch (mode plug)',
  'buffer-release-one': 'sch_plug TCQ_PLUG_RELEASE_ONE: release the previous epoch by count (mode plug)',
  'buffer-release-indefinite': 'sch_plug TCQ_PLUG_RELEASE_INDEFINITE: pass everything through (mode plug)',
  'buffer-limit': 'sch_plug TCQ_PLUG_LIMIT: {"bytes": N} (mode plug)',
  'log-rotate': 'a record filter closes its log segment (index, footer) and starts the next now: → {"segment", "path", "rotated"} ({"filter"?})',
};

export class Chain implements App {
  readonly kind: string = 'chain';
  readonly guest: FrameEndpoint;
  readonly network: FrameEndpoint;
  readonly guestPort: Port;
  readonly networkPort: Port;
  /** Pauses reading the guest (network port congested, or a filter holds the guest). */
  readonly guestReads: PauseGroup;
  readonly networkReads: PauseGroup;
  readonly counters = new ChainCounters();
  /** head → tail */
  filters: Filter[] = [];
  readonly events = new Listeners<AppEvent>();
  readonly commands: Readonly<Record<string, AppCommand>>;
  capture: CaptureSink | null = null;
  /** Set by the service runner: a filter cannot go on (a record filter's log failed). */
  onFatal: (err: NetrrError) => void = () => {};
  unflushed = 0;
  #opts: ChainOptions;
  readonly clock: Clock;
  #timers: NodeJS.Timeout[] = [];
  readonly #link: LinkWatch | null;

  constructor(opts: ChainOptions) {
    this.#opts = opts;
    this.clock = opts.clock ?? systemClock;
    const link = opts.failoverLink !== undefined ? parseLinkSpec(opts.failoverLink) : null;
    this.#link = link !== null ? new LinkWatch(link.ifname, link.downMs, () => this.colo('failover', { cause: 'link-down', link: link.ifname }), () => this.clock.nowMs()) : null;
    // With no filter to keep a frame (a bridge), reads reuse one buffer per endpoint and the ports
    // copy what has to wait (src/io/arena-reader.ts); filters may keep frames (a buffer's epochs), so
    // with filters every read's bytes stay valid for as long as a frame is kept.
    const borrowed = opts.filters.length === 0;
    this.guest = createEndpoint(opts.guest, { name: opts.guestName ?? 'guest', borrowedFrames: borrowed });
    this.network = createEndpoint(opts.network, { name: opts.networkName ?? 'network', borrowedFrames: borrowed });
    this.guestPort = new Port(this.guest, { copyOnBacklog: borrowed });
    this.networkPort = new Port(this.network, { copyOnBacklog: borrowed });
    this.guestReads = new PauseGroup([this.guest]);
    this.networkReads = new PauseGroup([this.network]);
    this.guestReads.watch(this.networkPort);
    this.networkReads.watch(this.guestPort);
    forwardEndpoints([this.guest, this.network], this.events);
    this.commands = this.#commands();
  }

  #emit(name: string, data: Record<string, unknown>): void {
    this.events.emit({ name, data });
  }

  #commands(): Record<string, AppCommand> {
    const commands: Record<string, AppCommand> = {
      'query-filters': { help: 'every filter, head to tail: kind, state, backlog, released, drops by reason, hold-time histogram', handler: () => this.filters.map((f) => f.report()) },
      'filter-status': {
        help: 'turn a filter on or off: {"filter": ID, "status": "on"|"off"} (a buffer turned off releases what it holds)',
        handler: (a) => {
          if (a.status !== 'on' && a.status !== 'off') throw new NetrrError('ERR_BAD_OPTION', 'filter-status: "status" must be "on" or "off"');
          this.setStatus(a.filter, a.status === 'on');
          return this.filter(a.filter).report();
        },
      },
      'colo-event': {
        help: 'deliver a COLO event to every filter: {"event": "checkpoint"|"failover"} (failover turns filters off, as QEMU)',
        handler: (a) => {
          if (a.event !== 'checkpoint' && a.event !== 'failover') throw new NetrrError('ERR_BAD_OPTION', 'colo-event: "event" must be "checkpoint" or "failover"');
          this.colo(a.event);
          return {};
        },
      },
    };
    for (const [name, help] of Object.entries(FILTER_COMMANDS)) commands[name] = { help, handler: (a) => this.command(name, a) };
    return commands;
  }

  /** The context of filter `id`; its position is looked up once, when the chain starts. */
  #context(id: string): FilterContext {
    let at = -2;
    return {
      passOn: (dir, frame, vnetHdrLen) => {
        if (at === -2) at = this.filters.findIndex((x) => x.id === id);
        this.#walk(dir, frame, vnetHdrLen, at);
      },
      requestCheckpoint: (cause, detail) => this.#emit('CHECKPOINT_REQUEST', { cause, ...detail }),
      holdGuest: (on) => (on ? this.guestReads.hold(`filter ${id}`) : this.guestReads.release(`filter ${id}`)),
      holdNetwork: (on) => (on ? this.networkReads.hold(`filter ${id}`) : this.networkReads.release(`filter ${id}`)),
      emit: (event, data) => this.#emit(event, data),
      fatal: (err) => this.onFatal(err),
    };
  }

  async start(): Promise<void> {
    this.#link?.start();
    for (const spec of this.#opts.filters) {
      if (spec.kind === 'buffer') this.filters.push(new BufferFilter(spec, this.#context(spec.id)));
      else if (spec.kind === 'rewriter') this.filters.push(new RewriterFilter(spec, this.#context(spec.id)));
      else if (spec.kind === 'dump') this.filters.push(await DumpFilter.open(spec, this.guest.spec.text, this.network.spec.text));
      else if (spec.kind === 'record') {
        const cfg = { ...spec, sync: spec.sync === undefined ? undefined : parseSyncPolicy(spec.sync) };
        this.filters.push(await RecordFilter.open(cfg, this.#context(spec.id), this.#opts.clock));
      }
      else {
        const f = spec.kind === 'mirror' ? new MirrorFilter(spec) : new RedirectorFilter(spec, this.#context(spec.id));
        forwardEndpoints(f.endpoints, this.events);
        this.filters.push(f);
      }
    }
    for (const f of this.filters) await f.start?.();
    for (const f of this.filters) {
      if (f.tickMs !== undefined && f.tick !== undefined) {
        const tick = f.tick.bind(f);
        const t = setInterval(() => {
          if (f.status) tick(this.clock.nowMs());
        }, Math.max(1, f.tickMs));
        this.#timers.push(t);
      }
    }
    if (this.#opts.capture !== undefined) {
      const sink = await CaptureSink.create(this.#opts.capture, { comment: `netrr ${this.guest.spec.text} <-> ${this.network.spec.text}` });
      sink.addInterface({ linkType: LINKTYPE_ETHERNET, name: this.guest.name, description: `frames received from ${this.guest.spec.text}` });
      sink.addInterface({ linkType: LINKTYPE_ETHERNET, name: this.network.name, description: `frames received from ${this.network.spec.text}` });
      this.capture = sink;
    }
    const n = this.filters.length;
    this.guest.onFrame = (frame, vnet) => {
      if (this.capture !== null) this.#capture(0, frame, vnet);
      this.#walk('rx', frame, vnet, n);
    };
    this.network.onFrame = (frame, vnet) => {
      if (this.capture !== null) this.#capture(1, frame, vnet);
      this.#walk('tx', frame, vnet, -1);
    };
    await this.network.start();
    await this.guest.start();
  }

  readonly #inbound = { flags: DIRECTION_INBOUND };

  /** Writes a frame as side `iface` received it (vnet header stripped) to the capture. */
  #capture(iface: number, frame: Uint8Array, vnet: number): void {
    this.capture!.write(iface, this.clock.nowMs(), vnet > 0 ? frame.subarray(vnet) : frame, this.#inbound);
  }

  /**
   * Runs a frame through the filters after position `after` in the direction's
   * order (tx: head → tail, so after = -1 starts at the head; rx: tail → head,
   * after = filters.length starts at the tail), then delivers it.
   */
  #walk(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number, after: number): void {
    const fs = this.filters;
    const now = this.clock.nowMs();
    if (dir === 'tx') {
      for (let i = after + 1; i < fs.length; i++) {
        const f = fs[i]!;
        if (f.status && f.queue !== 'rx' && f.receive(dir, frame, vnetHdrLen, now) === FILTER_CONSUMED) {
          this.counters.consumed++;
          return;
        }
      }
      this.counters.deliveredToGuest++;
      this.guestPort.send(frame, vnetHdrLen);
    } else {
      for (let i = after - 1; i >= 0; i--) {
        const f = fs[i]!;
        if (f.status && f.queue !== 'tx' && f.receive(dir, frame, vnetHdrLen, now) === FILTER_CONSUMED) {
          this.counters.consumed++;
          return;
        }
      }
      this.counters.deliveredToNetwork++;
      this.networkPort.send(frame, vnetHdrLen);
    }
  }

  filter(id: unknown): Filter {
    const f = this.filters.find((x) => x.id === id);
    if (f === undefined) throw new NetrrError('ERR_BAD_OPTION', `no filter '${String(id)}' (filters: ${this.filters.map((x) => x.id).join(', ') || 'none'})`);
    return f;
  }

  setStatus(id: unknown, on: boolean): void {
    const f = this.filter(id);
    if (f.status === on) return;
    f.status = on;
    f.statusChanged?.(this.clock.nowMs());
  }

  /** COLO events to every filter, head → tail; QEMU's default handler turns a filter off on failover. */
  colo(event: ColoEvent, detail: Record<string, unknown> = { cause: 'command' }): void {
    if (event === 'failover') this.#link?.stop();
    const now = this.clock.nowMs();
    for (const f of this.filters) {
      if (f.colo !== undefined) f.colo(event, now);
      else if (event === 'failover' && f.status) {
        f.status = false;
        f.statusChanged?.(now);
      }
    }
    this.#emit(event === 'checkpoint' ? 'COLO_CHECKPOINT' : 'COLO_FAILOVER', detail);
  }

  /** Runs a filter command (epoch-begin …): `filter` names it, or the one filter that has the command. */
  command(name: string, args: Record<string, unknown>): unknown {
    const candidates = args.filter !== undefined ? [this.filter(args.filter)] : this.filters.filter((f) => name in f.commands);
    if (candidates.length !== 1) {
      throw new NetrrError('ERR_BAD_OPTION', candidates.length === 0 ? `no filter answers ${name}` : `${name}: several filters answer it; name one with "filter"`);
    }
    const f = candidates[0]!;
    const cmd = f.commands[name];
    if (cmd === undefined) throw new NetrrError('ERR_BAD_OPTION', `filter '${f.id}' (${f.kind}) has no command ${name}`);
    return cmd(args, this.clock.nowMs());
  }

  status(): Record<string, unknown> {
    return {
      counters: { ...this.counters },
      filters: this.filters.map((f) => f.report()),
      endpoints: [this.guest, this.network].map((ep, i) => ({ ...ep.status(), port: (i === 0 ? this.guestPort : this.networkPort).status(), readHolds: (i === 0 ? this.guestReads : this.networkReads).status() })),
      capture: this.capture?.status() ?? null,
      unflushed: this.unflushed,
      ...(this.#link !== null ? { failoverLink: { ifname: this.#link.ifname, downMs: this.#link.detector.downMs, lost: this.#link.detector.fired } } : {}),
    };
  }

  counterTree(): CounterTree {
    const side = (ep: FrameEndpoint, port: Port, reads: PauseGroup): CounterTree => ({ ...numericFields(ep.counters), port: numericFields(port.counters), readPauses: reads.pauses });
    const filters: Record<string, CounterTree> = {};
    for (const f of this.filters) filters[f.id] = f.counterTree();
    const c = this.capture;
    return {
      ...numericFields(this.counters),
      unflushed: this.unflushed,
      [this.guest.name]: side(this.guest, this.guestPort, this.guestReads),
      [this.network.name]: side(this.network, this.networkPort, this.networkReads),
      filters,
      ...(c !== null ? { capture: { captured: c.captured, droppedOverflow: c.droppedOverflow, droppedWriteError: c.droppedWriteError } } : {}),
    };
  }

  #stopping: Promise<void> | null = null;

  /** SIGHUP: the capture and every filter's files start over at their paths (logrotate). */
  async reopen(): Promise<void> {
    await this.capture?.reopen();
    for (const f of this.filters) await f.reopen?.();
  }

  /** Stops once: later calls get the same promise. */
  stop(flushMs = SHUTDOWN_FLUSH_MS): Promise<void> {
    this.#stopping ??= this.#stop(flushMs);
    return this.#stopping;
  }

  async #stop(flushMs: number): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#link?.stop();
    this.guestReads.hold('stopping');
    this.networkReads.hold('stopping');
    const now = this.clock.nowMs();
    // Held output is released or dropped (each buffer's on-shutdown policy) while every filter can still see it pass.
    for (const f of this.filters) await f.shutdown?.(now);
    const left = await Promise.all([this.guestPort.flush(flushMs), this.networkPort.flush(flushMs)]);
    this.unflushed += left[0] + left[1];
    await Promise.all([this.guest.close(), this.network.close()]);
    for (const f of this.filters) await f.close?.();
    await this.capture?.close();
  }
}
