// Replays the outside world to a guest (pure; time comes in as arguments).
// World frames from the log are injected; the guest's frames are matched
// against the recorded ones, in order within a small reorder window. The
// guest's fresh choices (ports, ISNs, timestamps, ICMP ids) are learned from
// the first packet of each flow and applied to what is injected afterwards.
// The first frame that differs for another reason is a divergence: the run
// stops there (or goes on with --continue), naming the frame and the field.
//
// Pacing: causal (a world frame goes in once every guest frame that preceded
// it in the log has been matched; the default), recorded (causal, and also no
// sooner than its recorded delay, scaled by speed, after the latest guest
// frame matched before it: original timing where the guest's own pace allows)
// or fast (no waiting).
//
// The log streams in (push/end): the engine holds only the records from the
// first one it still needs (an unmatched guest frame or a world frame not yet
// injected) to the end of what was pushed, and says when it wants more.

import { IPPROTO_TCP, PacketView } from '../../packet/packet-view.ts';
import { type FlowMapping, FlowMappings, LearnTxn } from './flow-mapping.ts';
import { type FrameDifference, frameDifference } from './frame-diff.ts';
import { TCP_FIN, TCP_RST, TCP_SYN } from '../../packet/l4.ts';
import { connectionKey } from './flow-mapping.ts';
import { GuestStreams, isStreamSegment } from './guest-stream.ts';
import { TcpWindows } from './tcp-window.ts';
import { WorldRetransmit } from './world-retransmit.ts';

export type Pacing = 'causal' | 'recorded' | 'fast';

export interface LoggedFrame {
  readonly seq: number;
  /** 0: the guest sent it; 1: the world sent it. */
  readonly fromGuest: boolean;
  /** Nanoseconds since the start of the recording. */
  readonly tsNs: number;
  readonly frame: Uint8Array;
}

export interface ReplayOptions {
  readonly pacing: Pacing;
  readonly speed: number;
  /** How long a due guest frame may be missing before it is a divergence. */
  readonly timeoutMs: number;
  readonly continueOnDivergence: boolean;
  /** How many expected guest frames ahead a live frame may match (timing may reorder flows). */
  readonly window: number;
  /** Streaming: log frame bytes to hold ahead (default REPLAY_LOOKAHEAD_BYTES). */
  readonly lookaheadBytes?: number;
  /** Streaming: hard bound on log frame bytes held (default REPLAY_MAX_HELD_BYTES, at least the lookahead). */
  readonly maxHeldBytes?: number;
}

export const DEFAULT_REPLAY_TIMEOUT_MS = 10_000;
export const DEFAULT_REORDER_WINDOW = 8;
/** Recorded guest frames searched for a segment of the live guest's stream: at least this many, or eight reorder windows. */
const STREAM_SCAN_MIN = 64;
/** How many matched guest frames are remembered for recognising retransmissions. */
const RECENT_MATCHES = 32;
/** A streaming engine asks for more log while it holds less than this many frame bytes. */
export const REPLAY_LOOKAHEAD_BYTES = 64 * 1024 * 1024;
/**
 * Past the lookahead it still asks for more while a live guest frame waits for
 * its recorded counterpart, up to this many bytes held; beyond, it cannot
 * decide without unbounded memory (see `starved`).
 */
export const REPLAY_MAX_HELD_BYTES = 512 * 1024 * 1024;
/** Dropping consumed records from the front costs a copy; do it in steps of this many (or half of what is held). */
const TRIM_MIN_RECORDS = 1024;

export interface ReplayDivergence {
  readonly kind: 'mismatch' | 'missing';
  /** Log sequence number of the expected guest frame. */
  readonly seq: number;
  readonly field?: string;
  readonly offset?: number;
  readonly expected: Uint8Array;
  /** The guest's frame, translated into recorded space (mismatch only). */
  readonly actual?: Uint8Array;
  readonly atMs: number;
}

/** Where a replay is: before start(), started with no guest frame yet (no timeout runs: boot time is not a divergence), playing, done, or stopped at a divergence. */
export type ReplayPhase = 'idle' | 'waiting' | 'playing' | 'finished' | 'stopped';

/** A live frame judged against one recorded frame: what differs (null: they match), and the live frame in recorded space. */
interface Judged {
  readonly diff: FrameDifference | null;
  readonly frame: Uint8Array;
}

export interface ReplaySink {
  inject(frame: Uint8Array): void;
  divergence(d: ReplayDivergence): void;
  finished(): void;
}

export class ReplayStats {
  injected = 0;
  injectedBytes = 0;
  /** World frames rewritten for a learned mapping. */
  rewritten = 0;
  matched = 0;
  divergences = 0;
  /** Guest frames after the log ended (the recording stopped before the guest did). */
  afterEnd = 0;
  /** Guest frames dropped after a divergence with --continue. */
  unmatched = 0;
  /** Timing-driven guest frames (see isOptional) the live guest sent but the recording did not have where they came. */
  extraOptional = 0;
  /** Guest frames equal to one matched shortly before (retransmissions after a timer ran out). */
  retransmissions = 0;
  /** Timing-driven recorded frames not waited for. */
  skippedOptional = 0;
  /** Live guest TCP segments accepted as the recorded byte stream cut differently (guest-stream.ts). */
  streamMatched = 0;
  /** World TCP segments held until the live guest's receive window reached them (tcp-window.ts). */
  windowWaits = 0;
  /** Holds that outlived the timeout and were injected anyway (the deadlock guard). */
  windowWaitsExpired = 0;
  /** The first such hold: the segment and its flow's window state then (for diagnosis; null when none). */
  firstExpiry: { seq: number; end: number; heldMs: number; liveEdge: number; recEdge: number; liveShift: number; recShift: number; worldShift: number } | null = null;
  /** World TCP segments injected again because the live guest lost them (world-retransmit.ts). */
  worldResent = 0;
}

/** A TCP segment that only acknowledges: no data, no SYN/FIN/RST. Its timing is not deterministic. */
export function isPureAck(v: PacketView): boolean {
  return v.ipProto === 6 && v.srcPort >= 0 && v.payloadLength === 0 && (v.tcpFlags & 0x07) === 0;
}

/** ICMPv6 messages a kernel sends on its own timers: MLD (130-132, 143), router and neighbour discovery (133-137). */
const TIMER_ICMPV6 = new Set([130, 131, 132, 133, 134, 135, 136, 137, 143]);
const IPPROTO_IGMP = 2;

/**
 * Guest frames whose presence and place depend on timers, not on what the
 * guest was asked to do: pure ACKs, IPv6 neighbour/router discovery and MLD,
 * IGMP. Replay neither waits for them nor treats an extra one as divergence
 * (both are counted).
 */
export function isOptional(v: PacketView): boolean {
  return isPureAck(v) || (v.ipProto === 58 && TIMER_ICMPV6.has(v.icmpType)) || v.ipProto === IPPROTO_IGMP;
}

export class ReplayEngine {
  readonly stats = new ReplayStats();
  readonly mappings = new FlowMappings();
  readonly options: ReplayOptions;
  /** Records from absolute index #base on (earlier ones are consumed and dropped). */
  #records: LoggedFrame[] = [];
  #base = 0;
  #heldBytes = 0;
  /** The log has no more records (input side; the phase is the replay's own). */
  #logEnded = false;
  #phase: ReplayPhase = 'idle';
  #lastNowMs = 0;
  /** Recorded pacing: the live time and recorded time of the latest guest frame matched (or the start). */
  #anchorLiveMs = 0;
  #anchorRecNs = 0;
  #lookahead: number;
  #maxHeld: number;
  /** Live guest frames that arrived before enough of the log to judge them. */
  #pending: { frame: Uint8Array; nowMs: number }[] = [];
  #sink: ReplaySink;
  /** Absolute indices of guest frames not yet matched, in log order (matched ones become -1). */
  #expected: number[] = [];
  #expHead = 0;
  #nextWorld = 0;
  #firstTsNs = 0;
  #dueSinceMs = -1;
  /** The guest frames matched most recently (recorded bytes), to recognise retransmissions. */
  #recentMatches: Uint8Array[] = [];
  /** The head guest frame last found worth waiting for (judged once, not at every call). */
  #headWaits = -1;
  #live = new PacketView();
  #rec = new PacketView();
  #scratch = new PacketView();
  #windowView = new PacketView();
  #streamView = new PacketView();
  /** The translated live frame, a learning attempt's translation, a candidate rewrite: one view each, reused. */
  #tv = new PacketView();
  #learnView = new PacketView();
  #candView = new PacketView();
  readonly #txn = new LearnTxn();
  /** Stream matching: views of recorded segments and their places in #expected, reused. */
  readonly #segViews: PacketView[] = [];
  readonly #segSlots: number[] = [];
  #gateView = new PacketView();
  #nextInjectAtMs = Infinity;
  readonly windows = new TcpWindows();
  readonly streams = new GuestStreams();
  readonly retransmit = new WorldRetransmit();
  readonly #resend: Uint8Array[] = [];
  #rejudging = false;
  /** World frames waiting for the live guest's window, in log order, with when they started waiting. */
  #held: { idx: number; sinceMs: number; needsWindow: boolean }[] = [];
  /** Flows with a held frame during one pump: their later frames wait behind it, keeping each flow in order. */
  readonly #blocked = new Set<string>();

  /**
   * `records` is the whole log, unless `streaming`: then more come through
   * push() and end() says there are no more.
   */
  constructor(records: LoggedFrame[], options: ReplayOptions, sink: ReplaySink, streaming = false) {
    this.options = options;
    this.#sink = sink;
    this.#lookahead = options.lookaheadBytes ?? REPLAY_LOOKAHEAD_BYTES;
    this.#maxHeld = Math.max(this.#lookahead, options.maxHeldBytes ?? REPLAY_MAX_HELD_BYTES);
    this.push(records);
    if (!streaming) this.#logEnded = true;
  }

  /** More of the log, in order. */
  push(records: readonly LoggedFrame[]): void {
    if (records.length === 0) return;
    if (this.#base + this.#records.length === 0) this.#firstTsNs = records[0]!.tsNs;
    for (const r of records) {
      if (r.fromGuest) this.#expected.push(this.#base + this.#records.length);
      this.#records.push(r);
      this.#heldBytes += r.frame.length;
    }
    this.#afterInput();
  }

  /** The log has no more records. */
  end(): void {
    this.#logEnded = true;
    this.#afterInput();
  }

  #afterInput(): void {
    if (this.#phase === 'idle') return;
    const pending = this.#pending;
    this.#pending = [];
    // Their ACKs were seen when they arrived: judged now, they are not duplicate ACKs a second time.
    this.#rejudging = true;
    try {
      for (const p of pending) this.guestFrame(p.frame, p.nowMs);
    } finally {
      this.#rejudging = false;
    }
    this.#pump(this.#lastNowMs);
  }

  /** Whether a streaming engine wants more of the log now. */
  get hungry(): boolean {
    if (this.#logEnded || this.#phase === 'stopped') return false;
    return this.#heldBytes < this.#lookahead || (this.#pending.length > 0 && this.#heldBytes < this.#maxHeld);
  }

  /** A live frame waits for log the engine may not hold: the bound is too small for this log. */
  get starved(): boolean {
    return !this.#logEnded && this.#phase !== 'stopped' && this.#pending.length > 0 && this.#heldBytes >= this.#maxHeld;
  }

  /** Frame bytes of the log held now. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  #at(idx: number): LoggedFrame {
    return this.#records[idx - this.#base]!;
  }

  /** Drops records nothing needs any more: before the next world frame and the first unmatched guest frame. */
  #trim(): void {
    while (this.#expHead < this.#expected.length && this.#expected[this.#expHead] === -1) this.#expHead++;
    const firstExpected = this.#expHead < this.#expected.length ? this.#expected[this.#expHead]! : Infinity;
    const keepFrom = Math.min(this.#nextWorld, firstExpected, this.#held[0]?.idx ?? Infinity, this.#base + this.#records.length);
    const n = keepFrom - this.#base;
    // Amortised: drop once a fixed step or half of what is held is consumed.
    if (n < TRIM_MIN_RECORDS && n * 2 < this.#records.length) return;
    if (n <= 0) return;
    for (let i = 0; i < n; i++) this.#heldBytes -= this.#records[i]!.frame.length;
    this.#records = this.#records.slice(n);
    this.#base = keepFrom;
    if (this.#expHead >= TRIM_MIN_RECORDS) {
      this.#expected = this.#expected.slice(this.#expHead);
      this.#expHead = 0;
    }
  }

  get phase(): ReplayPhase {
    return this.#phase;
  }

  get stopped(): boolean {
    return this.#phase === 'stopped';
  }

  get finished(): boolean {
    return this.#phase === 'finished';
  }

  /** Expected guest frames still unmatched. */
  get outstanding(): number {
    return this.#expected.length - this.#expHead;
  }

  get learned(): readonly FlowMapping[] {
    return this.mappings.learned;
  }

  start(nowMs: number): void {
    this.#anchorLiveMs = nowMs;
    this.#anchorRecNs = this.#firstTsNs;
    this.#lastNowMs = nowMs;
    this.#phase = 'waiting';
    this.#pump(nowMs);
  }

  /** Absolute index of the first unmatched guest frame that must be waited for, or Infinity (none loaded). */
  #firstUnmatchedIndex(): number {
    // Matched entries inside the window are set to -1; timing-driven ones are not waited for.
    for (;;) {
      while (this.#expHead < this.#expected.length && this.#expected[this.#expHead] === -1) this.#expHead++;
      if (this.#expHead >= this.#expected.length) return Infinity;
      const idx = this.#expected[this.#expHead]!;
      if (idx === this.#headWaits) return idx;
      const v = this.#scratch.decode(this.#at(idx).frame);
      // A recorded guest retransmission (a FIN sent again when the world's ACK was lost) is timing too:
      // the live guest repeats it only if its own timer runs out, and may power off first.
      if (!isOptional(v) && !this.#recentMatches.some((f) => frameDifference(v, this.#rec.decode(f)) === null)) {
        this.#headWaits = idx;
        return idx;
      }
      this.#expected[this.#expHead] = -1;
      this.stats.skippedOptional++;
    }
  }

  #pump(nowMs: number): void {
    if (this.#phase === 'stopped') return;
    this.#lastNowMs = nowMs;
    const p = this.options.pacing;
    const blocked = this.#blocked;
    blocked.clear();
    this.#nextInjectAtMs = Infinity;
    if (this.#held.length > 0) this.#releaseHeld(nowMs);
    const loadedEnd = this.#base + this.#records.length;
    while (this.#nextWorld < loadedEnd) {
      const r = this.#at(this.#nextWorld);
      if (r.fromGuest) {
        // The recorded guest's window as of this point in the log.
        this.windows.recordedGuest(this.#windowView.decode(r.frame));
        this.#nextWorld++;
        continue;
      }
      if (p !== 'fast' && this.#waitsForGuest(r)) break;
      // An absolute schedule from the start would inject a DHCP offer before a slower boot asked for it.
      if (p === 'recorded') {
        const dueAt = this.#anchorLiveMs + (r.tsNs - this.#anchorRecNs) / 1e6 / this.options.speed;
        if (nowMs < dueAt) {
          this.#nextInjectAtMs = dueAt;
          break;
        }
      }
      if (p !== 'fast') {
        const v = this.#windowView.decode(r.frame);
        const key = TcpWindows.worldKey(v);
        // Beyond what the live guest can take now: wait (other flows go on); a recorded world never retransmits.
        const needsWindow = key !== null && this.windows.verdict(v) === 'hold';
        // Data that fits the live window goes past its flow's waiting frames (TCP takes it out of order): above all a
        // retransmission that fills the hole the guest's ACK is stuck at, without which the waiting frames never fit.
        const bypass = !needsWindow && v.payloadLength > 0 && (v.tcpFlags & (TCP_FIN | TCP_SYN | TCP_RST)) === 0;
        if (needsWindow || (key !== null && blocked.has(key) && !bypass)) {
          blocked.add(key!);
          this.#held.push({ idx: this.#nextWorld, sinceMs: nowMs, needsWindow });
          if (needsWindow) this.stats.windowWaits++;
          this.#nextWorld++;
          continue;
        }
      }
      this.#inject(r);
      this.#nextWorld++;
    }
    // A guest frame is due once every world frame recorded before it went in (recorded pacing may still be waiting for one).
    const due = this.#firstUnmatchedIndex();
    if (due !== Infinity && this.#nextWorld > due && (this.#held[0]?.idx ?? Infinity) > due) {
      if (this.#dueSinceMs < 0 && this.#phase === 'playing') this.#dueSinceMs = nowMs;
    } else {
      this.#dueSinceMs = -1;
    }
    this.#checkFinished();
    this.#trim();
  }

  /**
   * Causal pacing: a world frame waits for every guest frame recorded before
   * it, except the guest's own TCP data on the same flow once the live guest
   * has sent all that the frame acknowledges (a guest cuts its stream into
   * segments by timing, so an upload's recorded segments may never be matched
   * one for one before the world's ACK is due).
   */
  #waitsForGuest(r: LoggedFrame): boolean {
    if (this.#firstUnmatchedIndex() >= this.#nextWorld) return false;
    const wv = this.#gateView.decode(r.frame);
    if (!this.streams.covers(wv)) return true;
    const key = connectionKey(wv, false);
    for (let k = this.#expHead; k < this.#expected.length; k++) {
      const idx = this.#expected[k]!;
      if (idx === -1) continue;
      if (idx >= this.#nextWorld) return false;
      const gv = this.#scratch.decode(this.#at(idx).frame);
      if (isOptional(gv)) continue;
      if (isStreamSegment(gv) && connectionKey(gv, true) === key) continue;
      return true;
    }
    return false;
  }

  /** Injects held world frames the live window now takes (or whose hold outlived the timeout), in log order per flow. */
  #releaseHeld(nowMs: number): void {
    const blocked = this.#blocked;
    let kept = 0;
    for (const h of this.#held) {
      const r = this.#at(h.idx);
      const v = this.#windowView.decode(r.frame);
      const key = TcpWindows.worldKey(v)!;
      const fits = !h.needsWindow || this.windows.fitsLive(v);
      // A frame held only to stay behind its flow's earlier one goes as soon as that one has gone.
      if (!blocked.has(key) && (fits || nowMs - h.sinceMs > this.options.timeoutMs)) {
        if (!fits) {
          this.stats.windowWaitsExpired++;
          const w = this.stats.firstExpiry === null ? this.windows.describe(v) : null;
          if (w !== null) this.stats.firstExpiry = { seq: v.tcpSeq, end: (v.tcpSeq + v.payloadLength) >>> 0, heldMs: Math.round(nowMs - h.sinceMs), ...w };
        }
        this.#inject(r);
      } else {
        blocked.add(key);
        this.#held[kept++] = h;
      }
    }
    this.#held.length = kept;
  }

  /** Recorded pacing: the live time at which the next world frame is due (Infinity when none waits for time). A driver ticks then. */
  get nextInjectAtMs(): number {
    return this.#nextInjectAtMs;
  }

  /** World frames waiting for the live guest's receive window. */
  get windowHeld(): number {
    return this.#held.length;
  }

  /** Injects a world frame for the first time. */
  #inject(r: LoggedFrame): void {
    const v = this.#rec.decode(r.frame);
    this.retransmit.injected(v, this.#lastNowMs);
    const live = this.mappings.toLive(v, this.#scratch);
    const f = live ?? r.frame;
    if (live !== null) this.stats.rewritten++;
    this.stats.injected++;
    this.stats.injectedBytes += f.length;
    this.#sink.inject(f);
  }

  /** Sends again the injected world data the live guest lost (world-retransmit.ts), when due. */
  #resendDue(nowMs: number): void {
    const out = this.#resend;
    out.length = 0;
    this.retransmit.due(nowMs, out);
    for (const frame of out) {
      this.stats.worldResent++;
      this.#sink.inject(this.mappings.toLive(this.#rec.decode(frame), this.#scratch) ?? frame);
    }
    out.length = 0;
  }

  /** A live guest frame (in recorded space) moves the live window and the ACK point; returns whether held frames may fit now. */
  #liveAck(translated: Uint8Array, nowMs: number): boolean {
    const v = this.#windowView.decode(translated);
    if (!this.#rejudging && this.retransmit.liveGuest(v, nowMs)) this.#resendDue(nowMs);
    return this.windows.liveGuest(v) && this.#held.length > 0;
  }

  #checkFinished(): void {
    if (this.#phase !== 'finished' && this.#logEnded && this.#nextWorld >= this.#base + this.#records.length && this.#held.length === 0 && this.#firstUnmatchedIndex() === Infinity) {
      this.#phase = 'finished';
      this.#sink.finished();
    }
  }

  /** A frame the guest sent. */
  guestFrame(frame: Uint8Array, nowMs: number): void {
    if (this.#phase === 'stopped') return;
    if (this.#phase === 'waiting') this.#phase = 'playing';
    // Streaming: judge a live frame only with its whole reorder window of the log loaded, and
    // with a recorded frame to wait for loaded at all (the ones loaded may all be timing-driven
    // ACKs, skipped: a live ACK judged then was counted as coming after the end, and its window
    // update lost, so held world data waited for the deadlock guard).
    if (!this.#logEnded && (this.#pending.length > 0 || this.#expected.length - this.#expHead <= this.options.window || this.#firstUnmatchedIndex() === Infinity)) {
      this.#pending.push({ frame: Uint8Array.from(frame), nowMs });
      // Its window update need not wait for the log: held world data may fit now.
      const v = this.#live.decode(frame);
      const m = v.ipProto === IPPROTO_TCP ? this.mappings.forLive(v) : undefined;
      if (m !== undefined && this.#liveAck(this.mappings.toRecorded(v, m), nowMs)) this.#pump(nowMs);
      return;
    }
    const live = this.#live.decode(frame);
    const mapping = this.mappings.forLive(live);
    let translated = mapping !== undefined ? this.mappings.toRecorded(live, mapping) : frame;
    let tv = this.#tv.decode(translated);
    const withTxid = this.mappings.txidToRecorded(tv);
    if (withTxid !== null) {
      translated = withTxid;
      tv = this.#tv.decode(translated);
    }
    if (this.#firstUnmatchedIndex() === Infinity) {
      this.stats.afterEnd++;
      // Still a window update for world frames that wait for one.
      if (this.#liveAck(translated, nowMs)) this.#pump(nowMs);
      return;
    }
    const txn = this.#txn;
    let firstDiff: { idx: number; diff: FrameDifference } | null = null;
    let hit = -1;
    const limit = Math.min(this.#expected.length, this.#expHead + this.options.window);
    for (let k = this.#expHead; k < limit; k++) {
      const idx = this.#expected[k]!;
      if (idx === -1) continue;
      txn.clear();
      const r = this.#judge(live, mapping, tv, translated, this.#rec.decode(this.#at(idx).frame), txn);
      if (r.diff === null) {
        // What this frame taught (a flow's choices, an id, echo data) holds only now that it matched.
        this.mappings.commit(txn);
        translated = r.frame;
        hit = k;
        break;
      }
      firstDiff ??= { idx, diff: r.diff };
    }
    txn.clear();
    // Every live frame moves the live window (timing-driven ACKs and retransmissions too).
    const windowMoved = this.#liveAck(translated, nowMs);
    if (hit >= 0) {
      this.streams.sent(this.#streamView.decode(translated));
      const matched = this.#at(this.#expected[hit]!);
      this.#recentMatches.push(matched.frame);
      if (matched.tsNs >= this.#anchorRecNs) {
        this.#anchorRecNs = matched.tsNs;
        this.#anchorLiveMs = nowMs;
      }
      if (this.#recentMatches.length > RECENT_MATCHES) this.#recentMatches.shift();
      this.#expected[hit] = -1;
      this.stats.matched++;
      // Timing-driven recorded frames this frame overtook (e.g. ACKs it folded in): skip them.
      for (let k = this.#expHead; k < hit; k++) {
        const idx = this.#expected[k]!;
        if (idx !== -1 && isOptional(this.#rec.decode(this.#at(idx).frame))) {
          this.#expected[k] = -1;
          this.stats.skippedOptional++;
        }
      }
      this.#dueSinceMs = -1;
      this.#pump(nowMs);
      return;
    }
    if (isOptional(live)) {
      this.stats.extraOptional++;
      if (windowMoved) this.#pump(nowMs);
      return;
    }
    // A retransmission (a DHCP, TFTP or TCP retry after a timer) of a frame already matched: timing, not behaviour.
    for (const f of this.#recentMatches) {
      if (frameDifference(tv, this.#rec.decode(f)) === null) {
        this.stats.retransmissions++;
        if (windowMoved) this.#pump(nowMs);
        return;
      }
    }
    if (this.#streamMatch(translated, nowMs, windowMoved)) return;
    const exp = firstDiff ?? { idx: this.#firstUnmatchedIndex(), diff: { offset: 0, field: 'frame' } };
    const expRec = this.#at(exp.idx);
    this.#diverge({ kind: 'mismatch', seq: expRec.seq, field: exp.diff.field, offset: exp.diff.offset, expected: expRec.frame, actual: translated, atMs: nowMs });
    if (this.options.continueOnDivergence) this.stats.unmatched++;
  }

  /**
   * Compares a live frame (translated: `tv` over `translated`) with one
   * recorded frame, accepting into `txn` what a fresh boot may choose: the
   * flow's first packet (ports, ISN, timestamps), then an echo's data or a
   * transaction id. Returns the difference that remains, and the frame in
   * recorded space.
   */
  #judge(live: PacketView, mapping: FlowMapping | undefined, tv: PacketView, translated: Uint8Array, rec: PacketView, txn: LearnTxn): Judged {
    let diff = frameDifference(tv, rec);
    if (diff === null) return { diff, frame: translated };
    if (mapping === undefined && FlowMappings.learnable(live)) {
      const m = this.mappings.proposeFlow(txn, live, rec);
      if (m !== null) {
        const t2 = this.mappings.toRecorded(live, m);
        const t2v = this.#learnView.decode(t2);
        const r2 = this.#refine(t2v, t2, rec, frameDifference(t2v, rec), txn);
        if (r2.diff === null) return r2;
        // Not this flow's first packet after all: nothing of it is kept.
        txn.clear();
        diff = r2.diff;
      } else {
        // Not learnable: name the first difference beyond what a fresh boot may choose.
        diff = frameDifference(this.#candView.decode(this.mappings.withRecordedChoices(live, rec)), rec) ?? diff;
      }
    }
    return this.#refine(tv, translated, rec, diff, txn);
  }

  /** A payload difference a fresh boot explains: an echo's data (a send time), or a DHCP xid / DNS id. */
  #refine(t: PacketView, frame: Uint8Array, rec: PacketView, diff: FrameDifference | null, txn: LearnTxn): Judged {
    if (diff === null || diff.field !== 'payload') return { diff, frame };
    if (FlowMappings.isEchoRequest(t) && FlowMappings.isEchoRequest(rec) && t.length === rec.length && frameDifference(t, rec, true) === null) {
      // The reply will echo the live data.
      this.mappings.proposeEcho(txn, t);
      return { diff: null, frame };
    }
    const c = this.mappings.candidateTxid(t, rec);
    if (c !== null && frameDifference(this.#candView.decode(c.frame), rec) === null) {
      // Replies will carry this boot's id.
      this.mappings.proposeTxid(txn, c.liveId, c.recId);
      return { diff: null, frame: c.frame };
    }
    return { diff, frame };
  }

  /** The guest's TCP data cut into other segments than recorded: accepted when its bytes continue the recorded stream. */
  #streamMatch(translated: Uint8Array, nowMs: number, windowMoved: boolean): boolean {
    const v = this.#streamView.decode(translated);
    if (!isStreamSegment(v)) return false;
    const key = connectionKey(v, true);
    // The flow's unmatched recorded segments, in views and slots reused from call to call.
    const views = this.#segViews;
    const slots = this.#segSlots;
    let n = 0;
    const limit = Math.min(this.#expected.length, this.#expHead + Math.max(STREAM_SCAN_MIN, this.options.window * 8));
    for (let k = this.#expHead; k < limit; k++) {
      const idx = this.#expected[k]!;
      if (idx === -1) continue;
      const rv = (views[n] ??= new PacketView()).decode(this.#at(idx).frame);
      if (!isStreamSegment(rv) || connectionKey(rv, true) !== key) continue;
      slots[n++] = k;
    }
    let lastCovered = -1;
    const verdict = this.streams.match(v, views, n, (i) => {
      const k = slots[i]!;
      const r = this.#at(this.#expected[k]!);
      this.#expected[k] = -1;
      this.stats.matched++;
      if (r.tsNs >= this.#anchorRecNs) {
        this.#anchorRecNs = r.tsNs;
        this.#anchorLiveMs = nowMs;
      }
      if (k > lastCovered) lastCovered = k;
    });
    if (verdict === 'no') return false;
    if (verdict === 'retransmission') {
      this.stats.retransmissions++;
      if (windowMoved) this.#pump(nowMs);
      return true;
    }
    this.stats.streamMatched++;
    // Timing-driven recorded frames before the last segment it completed (ACKs folded in elsewhere): skip them.
    for (let k = this.#expHead; k < lastCovered; k++) {
      const idx = this.#expected[k]!;
      if (idx !== -1 && isOptional(this.#rec.decode(this.#at(idx).frame))) {
        this.#expected[k] = -1;
        this.stats.skippedOptional++;
      }
    }
    if (lastCovered >= 0) this.#dueSinceMs = -1;
    this.#pump(nowMs);
    return true;
  }

  #diverge(d: ReplayDivergence): void {
    this.stats.divergences++;
    this.#sink.divergence(d);
    if (!this.options.continueOnDivergence) this.#phase = 'stopped';
  }

  /** Timers: recorded pacing, and the timeout on a missing guest frame. */
  tick(nowMs: number): void {
    if (this.#phase === 'stopped') return;
    this.#pump(nowMs);
    this.#resendDue(nowMs);
    const idx = this.#firstUnmatchedIndex();
    // The first unmatched guest frame is due once every world frame before it went in (pump ensures that).
    if (idx !== Infinity && this.#dueSinceMs >= 0 && nowMs - this.#dueSinceMs > this.options.timeoutMs) {
      const missing = this.#at(idx);
      this.#diverge({ kind: 'missing', seq: missing.seq, expected: missing.frame, atMs: nowMs });
      if (this.options.continueOnDivergence) {
        // Give up on that frame and carry on with the next.
        this.#expected[this.#expHead] = -1;
        this.#dueSinceMs = nowMs;
        this.#pump(nowMs);
      }
    }
  }
}
