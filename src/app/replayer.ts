// netrr replay: plays the recorded outside world back to a guest with no
// upstream at all, matching what the guest sends against the log. The log is
// checked whole first (a damaged log is refused before the guest sees a
// frame), then streamed into the engine as it asks for more: memory is
// bounded by the engine's lookahead, not by the log's size.

import { appendFile } from 'node:fs/promises';
import { NetrrError } from '../errors.ts';
import { DIR_FROM_PORT, type LogHeader } from '../codec/netrr-log.ts';
import { type LoggedFrame, type ReplayDivergence, ReplayEngine, type ReplayOptions } from '../engine/replay/replay-engine.ts';
import { type Clock, splitEpochMs, systemClock } from '../engine/wall-clock.ts';
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
  let base: number | null = null;
  let batch: LoggedFrame[] = [];
  try {
    for (const p of segs) {
      const s = await scanSegment(
        p,
        (r, h: LogHeader) => {
          if (r.direction !== DIR_FROM_PORT || (r.port !== PORT_GUEST && r.port !== PORT_UPSTREAM)) return;
          base ??= h.createdNs;
          batch.push({ seq: r.seq, fromGuest: r.port === PORT_GUEST, tsNs: h.createdNs + r.tsNs - base, frame: Uint8Array.from(r.payload) });
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

export class Replayer {
  readonly endpoint: FrameEndpoint;
  /**
   * Injected frames go through a port: what the guest's socket cannot take yet
   * waits, in order, instead of being dropped as backpressure and still counted
   * as injected.
   */
  readonly port: Port;
  /** Report lines that could not be written (each also said on the output). */
  reportErrors = 0;
  #reportChain: Promise<void> = Promise.resolve();
  engine: ReplayEngine | null = null;
  onLine: (line: string) => void = () => {};
  readonly divergences: ReplayDivergence[] = [];
  #opts: ReplayerOptions;
  #clock: Clock;
  #timer: NodeJS.Timeout | null = null;
  #pcap: CaptureSink | null = null;
  #done!: () => void;
  #finishedAt = 0;
  #startedAt = 0;
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
  }

  /** Loads the log, waits for the guest, plays; resolves when finished or stopped at a divergence. */
  async run(): Promise<ReplayResult> {
    const segs = await checkLog(this.#opts.log);
    if (this.#opts.reportPcap !== undefined) {
      this.#pcap = await CaptureSink.create(this.#opts.reportPcap, { comment: `netrr replay divergences of ${this.#opts.log}` });
      this.#pcap.addInterface({ linkType: 1, name: 'expected', description: 'the recorded guest frame' });
      this.#pcap.addInterface({ linkType: 1, name: 'actual', description: "the replayed guest's frame (translated into recorded space)" });
    }
    const finished = new Promise<void>((r) => (this.#done = () => {
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
    };
    await this.endpoint.start();
    await Promise.race([this.endpoint.waitConnected(24 * 3600 * 1000), finished]);
    if (loadError !== null) throw loadError;
    this.#startedAt = this.#clock.nowMs();
    engine.start(this.#startedAt);
    this.#timer = setInterval(() => {
      engine.tick(this.#clock.nowMs());
      this.#poke();
      if (engine.stopped) this.#done();
    }, REPLAY_TICK_MS);
    await finished;
    if (loadError !== null) throw loadError;
    // Let the guest's last answers arrive (they are counted, not compared, once the log is done).
    await new Promise((r) => setTimeout(r, 200));
    return this.#result();
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
    this.onLine(`divergence: ${JSON.stringify(rec)}`);
    const report = this.#opts.report;
    if (report !== undefined) {
      // In order, and a failed write is said and counted, never an unhandled rejection.
      this.#reportChain = this.#reportChain
        .then(() => appendFile(report, `${JSON.stringify(rec)}\n`))
        .catch((err: unknown) => {
          this.reportErrors++;
          this.onLine(`report error: ${report}: ${(err as Error).message}`);
        });
    }
    if (this.#pcap !== null) {
      const ts = { sec: 0, nsec: 0 };
      splitEpochMs(this.#clock.nowMs(), ts);
      const comment = d.kind === 'missing' ? `log seq ${d.seq}: the guest never sent this frame` : `log seq ${d.seq}: first difference in ${d.field} at byte ${d.offset}`;
      this.#pcap.write(0, ts.sec, ts.nsec, d.expected, { comments: [comment] });
      if (d.actual !== undefined) this.#pcap.write(1, ts.sec, ts.nsec, d.actual, { comments: [comment] });
    }
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
        injected: s.injected,
        injectedBytes: s.injectedBytes,
        // Injected frames the guest never got (it left, or its socket failed): counted, not hidden.
        injectDropped: this.endpoint.counters.txDropped() + this.port.counters.dropped.noPeer + this.port.counters.dropped.backlogFull,
        ...(this.reportErrors > 0 ? { reportErrors: this.reportErrors } : {}),
        rewritten: s.rewritten,
        guestFramesMatched: s.matched,
        outstanding: e.outstanding,
        divergences: s.divergences,
        afterEnd: s.afterEnd,
        extraOptional: s.extraOptional,
        retransmissions: s.retransmissions,
        skippedOptional: s.skippedOptional,
        peakLogBytesHeld: this.peakHeldBytes,
        seconds: Number(secs.toFixed(3)),
        rate: { pps: Math.round(s.injected / secs), bps: Math.round((s.injectedBytes * 8) / secs) },
        learned: [...e.learned.map((m) => m.describe), ...(e.mappings.echoLearned > 0 ? [`icmp echo data: ${e.mappings.echoLearned} requests (replies echo the live data)`] : []), ...(e.mappings.txidsLearned > 0 ? [`transaction ids (DHCP xid / DNS id): ${e.mappings.txidsLearned}`] : [])],
      },
    };
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.port.flush(2000);
    await this.endpoint.close();
    await this.#reportChain;
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

