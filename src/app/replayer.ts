// netrr replay: plays the recorded outside world back to a guest with no
// upstream at all, matching what the guest sends against the log. The log is
// checked whole first (a damaged log is refused before the guest sees a
// frame), then streamed into the engine as it asks for more: memory is
// bounded by the engine's lookahead, not by the log's size.

import { NetrrError } from '../errors.ts';
import { type CounterTree, numericFields } from '../engine/counter-tree.ts';
import { Listeners } from '../events.ts';
import { ReportWriter } from '../io/report-writer.ts';
import { type App, type AppCommand, type AppEvent, forwardEndpoints } from './app.ts';
import { DIR_FROM_PORT, type LogHeader } from '../codec/netrr-log.ts';
import { type LoggedFrame, type ReplayDivergence, ReplayEngine, type ReplayOptions } from '../engine/replay/replay-engine.ts';
import { type Clock, systemClock } from '../io/clock.ts';
import { CaptureSink } from '../io/capture-sink.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { logSegments, scanSegment } from '../io/log-file.ts';
import { createEndpoint } from '../io/open-endpoint.ts';
import { Port } from './port.ts';
import { PacketView } from '../packet/packet-view.ts';
import { PORT_GUEST, PORT_UPSTREAM } from './recorder.ts';

export const REPLAY_TICK_MS = 20;

/** Thrown inside the log reader to stop it once the replay is over. */
class LoadStopped extends Error {}

/** Checks every segment of a log (CRCs, torn tails) without keeping anything; returns the segment paths. */
export async function checkLog(file: string): Promise<string[]> {
  const segs = logSegments(file);
  if (segs.length === 0) throw new NetrrError('ERR_FILE_NOT_FOUND', `${file}: no such file`);
  for (const p of segs) {
    const s = await scanSegment(p);
    if (s.damage !== null) throw new NetrrError(s.damage.code, `${s.damage.message}; run netrr log verify --repair first`, { offset: s.damage.offset ?? 0 });
  }
  return segs;
}

/**
 * Streams a log's guest and upstream frames to `push` in batches (one per read
 * window); after each batch, waits on `more()` before reading on. Times are
 * nanoseconds since the first segment's creation.
 */
export async function streamLogFrames(segs: readonly string[], push: (batch: LoggedFrame[]) => void, more: () => Promise<boolean>): Promise<void> {
  let base: bigint | null = null;
  let batch: LoggedFrame[] = [];
  try {
    for (const p of segs) {
      const s = await scanSegment(
        p,
        (r, h: LogHeader) => {
          if (r.direction !== DIR_FROM_PORT || (r.port !== PORT_GUEST && r.port !== PORT_UPSTREAM)) return;
          base ??= h.createdNs;
          batch.push({ seq: r.seq, fromGuest: r.port === PORT_GUEST, tsNs: Number(h.createdNs - base) + r.tsNs, frame: Uint8Array.from(r.payload) });
        },
        async () => {
          push(batch);
          batch = [];
          if (!(await more())) throw new LoadStopped();
        },
      );
      // The segment changed after checkLog read it (still being written?): stop rather than guess.
      if (s.damage !== null) throw new NetrrError(s.damage.code, `${s.damage.message} (found while replaying)`, { offset: s.damage.offset ?? 0 });
    }
    push(batch);
  } catch (e) {
    if (!(e instanceof LoadStopped)) throw e;
  }
}

/** How long a replay waits for its guest to connect before giving up. */
export const REPLAY_GUEST_WAIT_MS = 24 * 3600 * 1000;

export interface ReplayerOptions extends ReplayOptions {
  readonly log: string;
  readonly guest: string;
  readonly report?: string;
  readonly reportPcap?: string;
  readonly clock?: Clock;
}

export interface ReplayResult {
  readonly matched: boolean;
  readonly divergences: ReplayDivergence[];
  readonly summary: Record<string, unknown>;
}

/** What #setup hands #play: resolves when the replay is over; the log reader's error, if any. */
interface ReplaySetup {
  readonly over: Promise<void>;
  readonly loadError: () => unknown;
}

export class Replayer implements App {
  readonly kind = 'replay';
  readonly events = new Listeners<AppEvent>();
  readonly commands: Readonly<Record<string, AppCommand>> = {};
  onFatal: (err: NetrrError) => void = () => {};
  /** Resolves with the exit status once the replay is over (0 matched, 1 diverged or unfinished); rejects if the log cannot be read. */
  readonly finished: Promise<number>;
  /** The outcome, once the replay is over. */
  result: ReplayResult | null = null;
  readonly endpoint: FrameEndpoint;
  /**
   * Injected frames go through a port: what the guest's socket cannot take yet
   * waits, in order, instead of being dropped as backpressure and still counted
   * as injected.
   */
  readonly port: Port;
  readonly report: ReportWriter | null;
  engine: ReplayEngine | null = null;
  readonly divergences: ReplayDivergence[] = [];
  #opts: ReplayerOptions;
  #clock: Clock;
  #timer: NodeJS.Timeout | null = null;
  #dueTimer: NodeJS.Timeout | null = null;
  #dueTimerAtMs = 0;
  #pcap: CaptureSink | null = null;
  #done!: () => void;
  #finishedAt = 0;
  #startedAt = 0;
  /** When the guest disconnected before the replay was over (0: it did not). */
  #guestLeftAtMs = 0;
  #over = false;
  /** Resolves the log reader's wait for the engine to want more. */
  #wake: (() => void) | null = null;
  /** Largest number of log frame bytes the engine held at once. */
  peakHeldBytes = 0;

  constructor(opts: ReplayerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.endpoint = createEndpoint(opts.guest, { name: 'guest' });
    this.port = new Port(this.endpoint);
    this.report = opts.report !== undefined ? new ReportWriter(opts.report, (err) => this.events.emit({ name: 'REPORT_ERROR', data: { detail: `${opts.report}: ${err.message}`, code: 'ERR_IO' } })) : null;
    forwardEndpoints([this.endpoint], this.events);
    // A guest that leaves mid-replay is reported when it leaves, not later as a "missing" frame; the replay cannot go on without it.
    this.endpoint.events.on((e) => {
      if (e.type !== 'disconnected' || this.#over || this.#startedAt === 0) return;
      this.#guestLeftAtMs = this.#clock.nowMs();
      const s = this.engine!.stats;
      this.events.emit({ name: 'REPLAY_GUEST_DISCONNECTED', data: { afterMs: Math.round(this.#guestLeftAtMs - this.#startedAt), guestFramesMatched: s.matched, outstanding: this.engine!.outstanding, injected: s.injected } });
      this.#done();
    });
    let settle!: { resolve: (n: number) => void; reject: (e: unknown) => void };
    this.finished = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
    this.#settle = settle;
    // A start that fails (the socket cannot open) throws from start(); this rejection is then nobody's to handle.
    this.finished.catch(() => {});
  }

  readonly #settle: { resolve: (n: number) => void; reject: (e: unknown) => void };

  /** Checks the whole log (a damaged one is refused before the guest socket opens), then plays in the background: see `finished`. */
  async start(): Promise<void> {
    const segs = await checkLog(this.#opts.log);
    if (this.#opts.reportPcap !== undefined) {
      this.#pcap = await CaptureSink.create(this.#opts.reportPcap, { comment: `netrr replay divergences of ${this.#opts.log}` });
      this.#pcap.addInterface({ linkType: 1, name: 'expected', description: 'the recorded guest frame' });
      this.#pcap.addInterface({ linkType: 1, name: 'actual', description: "the replayed guest's frame (translated into recorded space)" });
    }
    const play = this.#setup(segs);
    // The guest's socket is open (listening, or dialling) when start resolves; the replay goes on in the background.
    await this.endpoint.start();
    this.#play(play).then(
      (r) => {
        // null: stopped before the end (a signal, quit); `finished` stays pending and the service reports the interruption.
        if (r === null) return;
        this.result = r;
        this.#settle.resolve(r.matched ? 0 : 1);
      },
      (e: unknown) => this.#settle.reject(e),
    );
  }

  /** The engine, the log streaming into it and the guest's frames into it; resolves when the replay is over. */
  #setup(segs: string[]): ReplaySetup {
    const over = new Promise<void>((r) => (this.#done = () => {
      this.#over = true;
      this.#poke();
      r();
    }));
    const engine = new ReplayEngine([], this.#opts, {
      inject: (f) => void this.port.send(f, 0),
      divergence: (d) => this.#onDivergence(d),
      finished: () => {
        this.#finishedAt = this.#clock.nowMs();
        this.#done();
      },
    }, true);
    this.engine = engine;
    const loading = streamLogFrames(
      segs,
      (batch) => {
        engine.push(batch);
        if (engine.heldBytes > this.peakHeldBytes) this.peakHeldBytes = engine.heldBytes;
      },
      async () => {
        while (!this.#over && !engine.hungry) {
          if (engine.starved) throw new NetrrError('ERR_QUEUE_FULL', `the guest sent a frame whose recorded counterpart lies more than ${engine.heldBytes} bytes of log ahead: replay would need unbounded memory`);
          await new Promise<void>((r) => (this.#wake = r));
        }
        return !this.#over;
      },
    ).then(() => {
      if (!this.#over) engine.end();
    });
    let loadError: unknown = null;
    loading.catch((e: unknown) => {
      loadError = e;
      this.#done();
    });
    this.endpoint.onFrame = (f, v) => {
      engine.guestFrame(v > 0 ? f.subarray(v) : f, this.#clock.nowMs());
      this.#poke();
      if (engine.stopped) this.#done();
      else this.#tickAtDue();
    };
    return { over, loadError: () => loadError };
  }

  /** Waits for the guest, plays until the engine is done or stopped at a divergence. */
  async #play({ over, loadError }: ReplaySetup): Promise<ReplayResult | null> {
    const engine = this.engine!;
    if (!this.endpoint.connected) this.events.emit({ name: 'REPLAY_WAITING', data: { for: 'the guest to connect', guest: this.#opts.guest, log: this.#opts.log } });
    try {
      await Promise.race([this.endpoint.waitConnected(REPLAY_GUEST_WAIT_MS), over]);
    } catch (e) {
      if (this.#over) return null;
      throw e;
    }
    if (loadError() !== null) throw loadError();
    this.#startedAt = this.#clock.nowMs();
    engine.start(this.#startedAt);
    this.#timer = setInterval(() => {
      engine.tick(this.#clock.nowMs());
      this.#poke();
      if (engine.stopped) this.#done();
      else this.#tickAtDue();
    }, REPLAY_TICK_MS);
    this.#tickAtDue();
    await over;
    if (loadError() !== null) throw loadError();
    // Let the guest's last answers arrive (they are counted, not compared, once the log is done).
    await new Promise((r) => setTimeout(r, 200));
    return this.#result();
  }

  /**
   * Recorded pacing: a world frame due before the next regular tick gets a
   * timer of its own. Without it every lockstep exchange (a TFTP block, a
   * DNS answer) waited for a 20 ms tick however short its recorded delay was:
   * a 1 MiB TFTP transfer took 46 s instead of a few.
   */
  #tickAtDue(): void {
    const e = this.engine;
    if (e === null || this.#over) return;
    const due = e.nextInjectAtMs;
    const now = this.#clock.nowMs();
    if (due === Infinity || due - now >= REPLAY_TICK_MS || (this.#dueTimer !== null && this.#dueTimerAtMs <= due)) return;
    if (this.#dueTimer !== null) clearTimeout(this.#dueTimer);
    this.#dueTimerAtMs = due;
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = null;
      e.tick(this.#clock.nowMs());
      this.#poke();
      if (e.stopped) this.#done();
      else this.#tickAtDue();
    }, Math.max(0, Math.ceil(due - now)));
  }

  /** Lets the log reader go on if the engine wants more (or the replay is over). */
  #poke(): void {
    const w = this.#wake;
    if (w !== null && (this.#over || this.engine?.hungry === true || this.engine?.starved === true)) {
      this.#wake = null;
      w();
    }
  }

  #onDivergence(d: ReplayDivergence): void {
    this.divergences.push(d);
    const v = new PacketView().decode(d.expected);
    const rec = {
      kind: d.kind,
      seq: d.seq,
      ...(d.field !== undefined ? { field: d.field, offset: d.offset } : {}),
      expected: { length: d.expected.length, summary: describeFrame(v), context: context(d.expected, d.offset) },
      ...(d.actual !== undefined ? { actual: { length: d.actual.length, summary: describeFrame(new PacketView().decode(d.actual)), context: context(d.actual, d.offset) } } : {}),
      learned: this.engine?.learned.map((m) => m.describe) ?? [],
    };
    this.events.emit({ name: 'REPLAY_DIVERGENCE', data: rec });
    this.report?.append(rec);
    if (this.#pcap !== null) {
      const now = this.#clock.nowMs();
      const comment = d.kind === 'missing' ? `log seq ${d.seq}: the guest never sent this frame` : `log seq ${d.seq}: first difference in ${d.field} at byte ${d.offset}`;
      this.#pcap.write(0, now, d.expected, { comments: [comment] });
      if (d.actual !== undefined) this.#pcap.write(1, now, d.actual, { comments: [comment] });
    }
  }

  status(): Record<string, unknown> {
    const state = this.#over ? 'over' : this.#startedAt === 0 ? 'waiting for the guest' : 'playing';
    return { log: this.#opts.log, pacing: this.#opts.pacing, state, over: this.#over, endpoint: this.endpoint.status(), port: this.port.status(), ...(this.engine !== null ? { progress: this.#result().summary } : {}) };
  }

  counterTree(): CounterTree {
    const e = this.engine;
    return {
      ...(e !== null ? numericFields(e.stats) : {}),
      outstanding: e?.outstanding ?? 0,
      peakLogBytesHeld: this.peakHeldBytes,
      reportErrors: this.report?.errors ?? 0,
      guest: { ...numericFields(this.endpoint.counters), port: numericFields(this.port.counters) },
    };
  }

  /** The summary so far (for a replay stopped before it was over). */
  summary(): Record<string, unknown> {
    return this.engine !== null ? this.#result().summary : {};
  }

  #result(): ReplayResult {
    const e = this.engine!;
    const secs = Math.max(1e-9, ((this.#finishedAt || this.#clock.nowMs()) - this.#startedAt) / 1000);
    const s = e.stats;
    return {
      matched: s.divergences === 0 && e.finished,
      divergences: this.divergences,
      summary: {
        matched: s.divergences === 0 && e.finished,
        ...(this.#guestLeftAtMs > 0 ? { guestDisconnectedAfterMs: Math.round(this.#guestLeftAtMs - this.#startedAt) } : {}),
        injected: s.injected,
        injectedBytes: s.injectedBytes,
        // Injected frames the guest never got (it left, or its socket failed): counted, not hidden.
        injectDropped: this.endpoint.counters.txDropped() + this.port.counters.dropped.noPeer + this.port.counters.dropped.backlogFull,
        ...(this.report !== null && this.report.errors > 0 ? { reportErrors: this.report.errors } : {}),
        rewritten: s.rewritten,
        guestFramesMatched: s.matched,
        outstanding: e.outstanding,
        divergences: s.divergences,
        afterEnd: s.afterEnd,
        extraOptional: s.extraOptional,
        retransmissions: s.retransmissions,
        skippedOptional: s.skippedOptional,
        // Guest TCP segments accepted because their bytes continue the recorded stream, cut differently.
        streamMatched: s.streamMatched,
        // World TCP segments that waited for the live guest's receive window, and waits the timeout ended.
        windowWaits: s.windowWaits,
        windowWaitsExpired: s.windowWaitsExpired,
        ...(s.firstExpiry !== null ? { firstWindowExpiry: s.firstExpiry } : {}),
        // World TCP segments sent again because the live guest lost them (by timeout or duplicate ACKs).
        worldResent: s.worldResent,
        // World segments whose TSval was raised so that none goes backwards (PAWS), summed over the flows.
        tsvalRaised: e.learned.reduce((n, m) => n + m.tsvalRaised, 0),
        ...(s.worldResent > 0 ? { worldResentRounds: { timeout: e.retransmit.stats.timeouts, dupAcks: e.retransmit.stats.fast } } : {}),
        // Unacknowledged segments no longer kept for sending again (past the per-flow or byte bound).
        ...(e.retransmit.stats.forgotten > 0 ? { worldResendForgotten: e.retransmit.stats.forgotten } : {}),
        windowHeldNow: e.windowHeld,
        peakLogBytesHeld: this.peakHeldBytes,
        seconds: Number(secs.toFixed(3)),
        rate: { pps: Math.round(s.injected / secs), bps: Math.round((s.injectedBytes * 8) / secs) },
        learned: [...e.learned.map((m) => m.describe), ...(e.mappings.echoLearned > 0 ? [`icmp echo data: ${e.mappings.echoLearned} requests (replies echo the live data)`] : []), ...(e.mappings.txidsLearned > 0 ? [`transaction ids (DHCP xid / DNS id): ${e.mappings.txidsLearned}`] : [])],
      },
    };
  }

  #stopping: Promise<void> | null = null;

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#over = true;
    this.#poke();
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#dueTimer !== null) clearTimeout(this.#dueTimer);
    await this.port.flush(2000);
    await this.endpoint.close();
    await this.report?.close();
    await this.#pcap?.close();
  }
}

function context(b: Uint8Array, offset: number | undefined): string {
  const from = Math.max(0, (offset ?? 0) - 8);
  return Buffer.from(b.subarray(from, from + 16)).toString('hex');
}

function describeFrame(v: PacketView): string {
  if (v.l3 === 0x0806) return `ARP op ${v.arpOp}`;
  if (v.srcPort >= 0) return `proto ${v.ipProto} ${v.srcPort} > ${v.dstPort}${v.ipProto === 6 ? ` flags 0x${v.tcpFlags.toString(16)} seq ${v.tcpSeq}` : ''} payload ${v.payloadLength}`;
  if (v.icmpType >= 0) return `icmp type ${v.icmpType} id ${v.icmpId}`;
  return `${v.length} bytes`;
}

