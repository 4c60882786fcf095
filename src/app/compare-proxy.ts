// netrr compare: stands where QEMU's colo-compare object stands. Owns the
// primary-in, secondary-in and out chardev sockets (and optionally notify_dev),
// feeds the pure compare engine, releases what it releases, and turns its
// checkpoint requests into Xen notify messages, QMP kicks and control events.

import { NetrrError } from '../errors.ts';
import { type CounterTree, numericFields } from '../engine/counter-tree.ts';
import { Listeners } from '../events.ts';
import { parseBypassRule } from '../engine/colo-compare/bypass-rules.ts';
import { ReportWriter } from '../io/report-writer.ts';
import { type App, type AppCommand, type AppEvent, forwardEndpoints } from './app.ts';
import { encodeNotify, parseNotify } from '../codec/xen-notify.ts';
import { QmpClient } from '../control/qmp-client.ts';
import { type CheckpointRequest, CompareEngine, type CompareConfig } from '../engine/colo-compare/compare-engine.ts';
import { divergenceRecord } from '../engine/colo-compare/divergence-record.ts';
import { type Clock, systemClock } from '../io/clock.ts';
import { CaptureSink } from '../io/capture-sink.ts';
import { parseEndpointSpec, withVnet } from '../io/endpoint-spec.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { createEndpoint } from '../io/open-endpoint.ts';
import { StreamEndpoint } from '../io/stream-endpoint.ts';
import { LINKTYPE_ETHERNET } from '../packet/packet-view.ts';
import { PauseGroup } from './pause-group.ts';
import { Port, SHUTDOWN_FLUSH_MS } from './port.ts';

/** Connections listed in status() (the deepest queues first). */
export const BUSIEST_SHOWN = 10;

/** Room in outdev's backlog beyond --max-queued-bytes: frames decoded from reads already in flight when the inputs paused. */
export const OUT_BACKLOG_SLACK_BYTES = 16 * 1024 * 1024;

export interface CompareProxyOptions {
  readonly primaryIn: string;
  readonly secondaryIn: string;
  readonly outdev: string;
  readonly notifyDev?: string;
  readonly qmp?: string;
  readonly vnetHdrSupport: boolean;
  readonly config: CompareConfig;
  /** JSON lines, one per checkpoint request. */
  readonly report?: string;
  /** pcapng of the frames involved in each divergence. */
  readonly reportPcap?: string;
  readonly clock?: Clock;
}

export class CompareProxy implements App {
  readonly kind = 'compare';
  readonly events = new Listeners<AppEvent>();
  readonly commands: Readonly<Record<string, AppCommand>>;
  onFatal: (err: NetrrError) => void = () => {};
  readonly engine: CompareEngine;
  readonly primary: FrameEndpoint;
  readonly secondary: FrameEndpoint;
  readonly out: FrameEndpoint;
  /**
   * Released frames go through this port: what the outdev socket cannot take
   * yet waits in its backlog, in order, and is written as the socket drains.
   * A checkpoint flush of everything held therefore arrives whole (issue 8 item 2).
   */
  readonly outPort: Port;
  /** Pauses both inputs while outPort is congested. */
  readonly inputs: PauseGroup;
  readonly notify: FrameEndpoint | null;
  /** Frames still in outdev's backlog when a stop's flush time ran out (reported, counted). */
  unflushed = 0;
  qmp: QmpClient | null = null;
  /** Notify records we could not interpret. */
  notifyErrors = 0;
  reportsWritten = 0;
  readonly report: ReportWriter | null;
  /** Checkpoint requests sent to QEMU over QMP (x-checkpoint-delay kicks). */
  qmpKicks = 0;
  #opts: CompareProxyOptions;
  #clock: Clock;
  #scanTimer: NodeJS.Timeout | null = null;
  #pcap: CaptureSink | null = null;
  #qmpStopped = false;

  constructor(opts: CompareProxyOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    const v = opts.vnetHdrSupport;
    // The engine copies what it queues, so the inputs' reads reuse one buffer each (src/io/arena-reader.ts).
    this.primary = createEndpoint(withVnet(opts.primaryIn, v), { name: 'primary-in', borrowedFrames: true });
    this.secondary = createEndpoint(withVnet(opts.secondaryIn, v), { name: 'secondary-in', borrowedFrames: true });
    this.out = createEndpoint(withVnet(opts.outdev, v), { name: 'outdev' });
    if (opts.notifyDev !== undefined) {
      const spec = parseEndpointSpec(withVnet(opts.notifyDev, v));
      if (spec.kind === 'udp') throw new NetrrError('ERR_BAD_ENDPOINT_SPEC', '--notify-dev must be a stream socket (unix: or tcp:)');
      // Incoming notify records carry the vnet field with vnet_hdr_support; outgoing never do.
      this.notify = new StreamEndpoint(spec, { name: 'notify-dev', txVnetHdr: false });
    } else this.notify = null;
    // Frames the engine passes through uncompared (failover, unsupported, bypassed) are the inputs' borrowed views: copied if they wait.
    this.outPort = new Port(this.out, { maxBacklogBytes: opts.config.maxQueuedBytes + OUT_BACKLOG_SLACK_BYTES, copyOnBacklog: true });
    this.inputs = new PauseGroup([this.primary, this.secondary]);
    this.inputs.watch(this.outPort);
    this.engine = new CompareEngine(opts.config, {
      release: (frame, vnetLen) => void this.outPort.send(frame, vnetLen),
      checkpoint: (req) => this.#onCheckpointRequest(req),
    });
    this.report = opts.report !== undefined ? new ReportWriter(opts.report, (err) => this.#emit('REPORT_ERROR', { detail: err.message, code: 'ERR_IO' })) : null;
    forwardEndpoints(this.endpoints, this.events);
    this.commands = this.#commands();
  }

  #emit(name: string, data: Record<string, unknown>): void {
    this.events.emit({ name, data });
  }

  #commands(): Record<string, AppCommand> {
    const rules = (): string[] => this.engine.config.bypass.map((r) => r.text);
    return {
      'checkpoint-done': { help: 'the checkpoint finished: release held primaries, drop held secondaries', handler: () => (this.checkpointDone('control'), {}) },
      failover: { help: 'the secondary is gone: flush and pass primary output through uncompared', handler: () => (this.failover(), {}) },
      'bypass-add': {
        help: 'add a bypass rule, e.g. {"rule": "proto=udp,dport=123"} (extended mode)',
        handler: (a) => {
          this.engine.addBypass(parseBypassRule(String(a.rule ?? '')));
          return { rules: rules() };
        },
      },
      'bypass-remove': {
        help: 'remove a bypass rule by its text: {"rule": "…"}',
        handler: (a) => {
          this.engine.removeBypass(String(a.rule));
          return { rules: rules() };
        },
      },
      'query-bypass': { help: 'bypass rules and their hit counts', handler: () => this.engine.config.bypass.map((r) => ({ rule: r.text, hits: r.hits })) },
    };
  }

  get endpoints(): FrameEndpoint[] {
    return [this.primary, this.secondary, this.out, ...(this.notify !== null ? [this.notify] : [])];
  }

  async start(): Promise<void> {
    const e = this.engine;
    const clock = this.#clock;
    // The clock is read once per read, not per frame (a read holds up to hundreds).
    let now = clock.nowMs();
    const tick = (): void => {
      now = clock.nowMs();
    };
    this.primary.onRead = tick;
    this.secondary.onRead = tick;
    this.primary.onFrame = (f, v) => e.primaryIn(f, v, now);
    this.secondary.onFrame = (f, v) => e.secondaryIn(f, v, now);
    if (this.notify !== null) this.notify.onFrame = (f) => this.#onNotify(f);
    if (this.#opts.reportPcap !== undefined) {
      this.#pcap = await CaptureSink.create(this.#opts.reportPcap, { comment: 'netrr compare divergence report: frames of each checkpoint request' });
      this.#pcap.addInterface({ linkType: LINKTYPE_ETHERNET, name: 'primary', description: 'primary_in' });
      this.#pcap.addInterface({ linkType: LINKTYPE_ETHERNET, name: 'secondary', description: 'secondary_in' });
    }
    if (this.#opts.qmp !== undefined) await this.#connectQmp(this.#opts.qmp);
    // Output first: QEMU's peers drop what they send while out has no client; we do the same.
    await this.out.start();
    if (this.notify !== null) await this.notify.start();
    await this.primary.start();
    await this.secondary.start();
    this.#scanTimer = setInterval(() => e.scan(clock.nowMs()), this.#opts.config.expiredScanCycleMs);
    this.#scanTimer.unref();
  }

  #onNotify(payload: Uint8Array): void {
    let msg;
    try {
      msg = parseNotify(payload);
    } catch (err) {
      this.notifyErrors++;
      this.#emit('NOTIFY_ERROR', { detail: (err as Error).message });
      return;
    }
    if (msg === 'COLO_USERSPACE_PROXY_INIT') this.notify!.send(encodeNotify('COLO_COMPARE_GET_XEN_INIT').subarray(4), 0);
    else if (msg === 'COLO_CHECKPOINT') this.checkpointDone('notify');
    else {
      this.notifyErrors++;
      this.#emit('NOTIFY_ERROR', { detail: `unexpected ${msg} from the COLO frame` });
    }
  }

  async #connectQmp(spec: string): Promise<void> {
    const qmp = await QmpClient.connect(spec);
    // STOP → RESUME brackets the primary's checkpoint; flush on RESUME (later than QEMU's own flush point, hence safe).
    qmp.onEvent = (ev) => {
      if (ev.event === 'STOP') this.#qmpStopped = true;
      else if (ev.event === 'RESUME' && this.#qmpStopped) {
        this.#qmpStopped = false;
        this.checkpointDone('qmp');
      }
    };
    this.qmp = qmp;
  }

  #onCheckpointRequest(req: CheckpointRequest): void {
    if (this.notify !== null && this.notify.connected) this.notify.send(encodeNotify('DO_CHECKPOINT').subarray(4), 0);
    if (this.qmp !== null) {
      this.qmp.kickCheckpoint().then(
        () => this.qmpKicks++,
        (err: unknown) => this.#emit('QMP_ERROR', { detail: String(err) }),
      );
    }
    const cfg = this.engine.config;
    const record = divergenceRecord(req, cfg.mode === 'extended' ? cfg.normalizers : [], new Date(req.atMs || this.#clock.nowMs()).toISOString());
    this.#emit('CHECKPOINT_REQUEST', record as unknown as Record<string, unknown>);
    if (req.attempt === 1) this.#writeReport(req, record);
  }

  #writeReport(req: CheckpointRequest, record: ReturnType<typeof divergenceRecord>): void {
    this.report?.append(record);
    const pcap = this.#pcap;
    if (pcap !== null) {
      const now = this.#clock.nowMs();
      const comment = `checkpoint request: ${req.cause} on ${record.flow}${record.firstDiffOffset !== undefined ? `, first difference at byte ${record.firstDiffOffset}` : ''}`;
      const d = req.divergence;
      if (d.primary !== undefined) pcap.write(0, now, d.primary.data.subarray(d.primary.vnetHdrLen), { comments: [comment] });
      if (d.secondary !== undefined) pcap.write(1, now, d.secondary.data.subarray(d.secondary.vnetHdrLen), { comments: [comment] });
    }
    this.reportsWritten++;
  }

  /** The checkpoint finished: release held primaries, drop held secondaries. */
  checkpointDone(source: string): void {
    this.engine.checkpointDone();
    this.#emit('CHECKPOINT_DONE', { source });
  }

  failover(): void {
    this.engine.failover();
    this.#emit('FAILOVER', {});
  }

  status(): Record<string, unknown> {
    const e = this.engine;
    return {
      mode: e.config.mode,
      config: { ...e.config, bypass: e.config.bypass.map((r) => ({ rule: r.text, hits: r.hits })) },
      checkpointPending: e.checkpointPending,
      failedOver: e.failedOver,
      queued: { primary: e.queuedPrimary, secondary: e.queuedSecondary, bytes: e.queuedBytes },
      connections: { current: e.table.size, created: e.table.created, evicted: e.table.evicted },
      /** The connections holding the most packets (queue depths per side, age of the oldest). */
      busiest: e.busiest(BUSIEST_SHOWN, this.#clock.nowMs()),
      counters: e.counters,
      /** Primary frames released so far, all reasons (counters.primary has them by reason). */
      released: e.counters.released(),
      store: { slabsInUse: e.store.slabsInUse, slabsAllocated: e.store.slabsAllocated, slabBytes: e.store.slabBytes },
      notifyErrors: this.notifyErrors,
      reportsWritten: this.reportsWritten,
      qmpKicks: this.qmpKicks,
      outPort: this.outPort.status(),
      inputs: this.inputs.status(),
      unflushed: this.unflushed,
      endpoints: this.endpoints.map((ep) => ep.status()),
    };
  }

  counterTree(): CounterTree {
    const e = this.engine;
    const eps: Record<string, CounterTree> = {};
    for (const ep of this.endpoints) eps[ep.name] = numericFields(ep.counters);
    return {
      ...numericFields(e.counters),
      queued: { primary: e.queuedPrimary, secondary: e.queuedSecondary, bytes: e.queuedBytes },
      store: { slabsInUse: e.store.slabsInUse, slabBytes: e.store.slabBytes },
      connections: { current: e.table.size, created: e.table.created, evicted: e.table.evicted },
      bypassHits: e.config.bypass.reduce((n, r) => n + r.hits, 0),
      notifyErrors: this.notifyErrors,
      reportsWritten: this.reportsWritten,
      reportErrors: this.report?.errors ?? 0,
      qmpKicks: this.qmpKicks,
      unflushed: this.unflushed,
      outPort: numericFields(this.outPort.counters),
      inputPauses: this.inputs.pauses,
      endpoints: eps,
    };
  }

  #stopping: Promise<void> | null = null;

  /** SIGHUP: the divergence pcapng starts over at its path (the JSON report is opened per line already). */
  async reopen(): Promise<void> {
    await this.#pcap?.reopen();
  }

  /** Stops once: later calls get the same promise. */
  stop(flushMs = SHUTDOWN_FLUSH_MS): Promise<void> {
    this.#stopping ??= this.#stop(flushMs);
    return this.#stopping;
  }

  async #stop(flushMs: number): Promise<void> {
    if (this.#scanTimer !== null) clearInterval(this.#scanTimer);
    this.inputs.hold('stopping');
    // Like QEMU's finalisation: queued primaries are flushed before the sockets close,
    // paced by outdev (at most flushMs); what cannot be written is counted and reported.
    this.engine.checkpointDone();
    this.unflushed += await this.outPort.flush(flushMs);
    if (this.unflushed > 0) this.#emit('SHUTDOWN_UNWRITTEN_ERROR', { endpoint: 'outdev', detail: `${this.unflushed} released primaries could not be written to outdev within ${flushMs} ms`, code: 'ERR_QUEUE_FULL' });
    for (const ep of this.endpoints) await ep.close();
    this.qmp?.close();
    await this.report?.close();
    await this.#pcap?.close();
  }
}
