// `netrr demo`: what netrr is for, in one process, on real sockets. Two
// replicas of a guest (engine/demo-traffic.ts: an ARP reply, a DNS query, an
// HTTP download with pings) send their output to `netrr compare`; what
// compare releases goes through a chain whose buffer holds it until an epoch
// commits, then to the world. The secondary gets one byte of one segment
// wrong: compare requests a checkpoint, and the demo's controller, playing
// COLO, answers it. A live page (live-server.ts) shows it all as it runs.
//
//   primary  ─┐                                 ┌─ buffer (epochs) ─▶ world
//             ├─▶ compare (extended) ─▶ outdev ─┤
//   secondary ┘                                 chain

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetrrError } from '../errors.ts';
import { compareConfig } from '../engine/colo-compare/compare-engine.ts';
import { type DemoFrame, type DemoTrafficOptions, replicaOutput } from '../engine/demo-traffic.ts';
import { parseFilterList } from '../engine/filters/filter-spec.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { createEndpoint } from '../io/open-endpoint.ts';
import { Chain } from './chain.ts';
import { CompareProxy } from './compare-proxy.ts';
import { DEMO_EPOCH_MS, DemoController, type DemoCommonSummary, commonLines } from './demo-controller.ts';
import { LiveServer } from './live/live-server.ts';

/** How long the demo's traffic takes by default. */
export const DEMO_DURATION_MS = 10_000;
/** The sources send in ticks of this length. */
const TICK_MS = 10;

export interface DemoOptions {
  readonly durationMs: number;
  readonly traffic: DemoTrafficOptions;
  /** The live page's address (port 0: any free port). */
  readonly host: string;
  readonly port: number;
  /** Keep the live page up this long after the run (the summary is printed first). */
  readonly lingerMs: number;
  readonly log: (line: string) => void;
}

export interface DemoSummary extends DemoCommonSummary {
  readonly sent: { primary: number; secondary: number };
  readonly world: { frames: number; bytes: number };
  /** Every primary frame reached the world, once, byte for byte (and nothing else). */
  readonly complete: boolean;
}

/** One replica's source: sends its frames at a steady rate, pausing while its socket is congested. */
class Source {
  sent = 0;
  readonly #frames: readonly DemoFrame[];
  readonly #ep: FrameEndpoint;
  readonly #perTick: number;
  constructor(ep: FrameEndpoint, frames: readonly DemoFrame[], durationMs: number) {
    this.#ep = ep;
    this.#frames = frames;
    this.#perTick = Math.max(1, Math.ceil((frames.length * TICK_MS) / durationMs));
  }

  get done(): boolean {
    return this.sent >= this.#frames.length;
  }

  tick(): void {
    for (let n = 0; n < this.#perTick && !this.done && this.#ep.writable; n++) {
      if (this.#ep.send(this.#frames[this.sent]!.frame, 0)) this.sent++;
      else break;
    }
  }
}

export class Demo {
  readonly compare: CompareProxy;
  readonly chain: Chain;
  readonly live: LiveServer;
  readonly controller: DemoController;
  readonly #o: DemoOptions;
  readonly #dir: string;
  readonly #world: FrameEndpoint;
  readonly #feeds: FrameEndpoint[];
  /** The primary's frames by their first bytes (unique in the demo's traffic), each to reach the world once. */
  readonly #expected = new Map<string, { frame: Uint8Array; seen: number }>();
  #worldFrames = 0;
  #worldBytes = 0;
  #worldWrong = 0;

  constructor(o: DemoOptions) {
    this.#o = o;
    this.#dir = mkdtempSync(join(tmpdir(), 'netrr-demo-'));
    const d = this.#dir;
    this.compare = new CompareProxy({
      primaryIn: `unix:${d}/primary.sock,server=on`,
      secondaryIn: `unix:${d}/secondary.sock,server=on`,
      outdev: `unix:${d}/out.sock,server=on`,
      vnetHdrSupport: false,
      config: compareConfig({ mode: 'extended' }),
    });
    this.chain = new Chain({ guest: `unix:${d}/out.sock`, network: `unix:${d}/world.sock,server=on`, filters: parseFilterList(['buffer,id=epochs,mode=epochs']), guestName: 'compare-out', networkName: 'world' });
    this.#world = createEndpoint(`unix:${d}/world.sock`, { name: 'world' });
    this.#feeds = ['primary', 'secondary'].map((n) => createEndpoint(`unix:${d}/${n}.sock`, { name: n }));
    for (const f of replicaOutput({ ...o.traffic, divergeSegment: -1 })) this.#expected.set(frameKey(f.frame), { frame: f.frame, seen: 0 });
    this.controller = new DemoController(this.compare, this.chain, o.log);
    this.live = new LiveServer({
      host: o.host,
      port: o.port,
      instances: () => [
        { name: 'compare', app: this.compare },
        { name: 'buffer', app: this.chain },
      ],
      extra: () => ({ ...this.controller.page(), world: { frames: this.#worldFrames, bytes: this.#worldBytes } }),
    });
  }

  /** Runs the scenario and returns its summary (the live page stays up for lingerMs after). */
  async run(): Promise<DemoSummary> {
    const o = this.#o;
    const url = await this.live.start();
    o.log(`netrr demo: live page at ${url} (up while the demo runs)`);
    this.#world.onFrame = (f) => {
      const want = this.#expected.get(frameKey(f));
      if (want === undefined || want.seen++ > 0 || Buffer.compare(want.frame, f) !== 0) this.#worldWrong++;
      this.#worldFrames++;
      this.#worldBytes += f.length;
    };
    await this.compare.start();
    await this.chain.start();
    await this.#world.start();
    for (const f of this.#feeds) await f.start();
    await Promise.all([...this.#feeds, this.#world].map((f) => f.waitConnected(10_000)));
    await this.chain.guest.waitConnected(10_000);
    const sources = [
      new Source(this.#feeds[0]!, replicaOutput({ ...o.traffic, divergeSegment: -1 }), o.durationMs),
      new Source(this.#feeds[1]!, replicaOutput(o.traffic), o.durationMs),
    ];
    o.log(`  two replicas send ${this.#expected.size} frames each over ${(o.durationMs / 1000).toFixed(1)} s; the secondary diverges once`);
    this.controller.startEpochs();
    try {
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          for (const s of sources) s.tick();
          if (sources.every((s) => s.done)) {
            clearInterval(t);
            resolve();
          }
        }, TICK_MS);
      });
      // Everything compare released reaches the world once the last epoch commits.
      const deadline = performance.now() + 10_000;
      while (this.#worldFrames < this.#expected.size && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, DEMO_EPOCH_MS));
      }
    } finally {
      this.controller.stop();
    }
    const summary: DemoSummary = {
      ...this.controller.summary(),
      sent: { primary: sources[0]!.sent, secondary: sources[1]!.sent },
      world: { frames: this.#worldFrames, bytes: this.#worldBytes },
      complete: this.#worldWrong === 0 && this.#worldFrames === this.#expected.size,
    };
    return summary;
  }

  /** Keeps the page up for lingerMs, then closes everything. */
  async close(): Promise<void> {
    if (this.#o.lingerMs > 0) await new Promise((r) => setTimeout(r, this.#o.lingerMs));
    for (const f of this.#feeds) await f.close();
    await this.#world.close();
    await this.chain.stop(1000);
    await this.compare.stop(1000);
    await this.live.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** The end-of-run summary as the demo prints it. */
export function formatSummary(s: DemoSummary): string {
  const l = commonLines(s);
  const d = s.divergence;
  const lines = [`netrr demo: ${s.complete ? 'done' : 'INCOMPLETE'} in ${s.seconds} s`, l.compared, l.released, l.checkpoints];
  if (d !== null) {
    lines.push(`  divergence    ${d.cause} on ${d.flow}, first differing byte at offset ${d.firstDiffOffset ?? '?'}`);
    if (d.primary !== undefined && d.secondary !== undefined) {
      lines.push(`                primary   ${bytesLine(d.primary.context, d.secondary.context)}`, `                secondary ${bytesLine(d.secondary.context, d.primary.context)}`);
    }
  }
  lines.push(l.epochs, `  world         ${s.world.frames} frames, ${s.world.bytes} bytes: ${s.complete ? "every primary frame once, the primary's bytes" : 'NOT every primary frame exactly once'}`);
  return lines.join('\n');
}

export function checkDemo(s: DemoSummary): void {
  if (!s.complete) throw new NetrrError('ERR_DEMO_INCOMPLETE', `the world got ${s.world.frames} frames, not every primary frame exactly once`);
}

/** Context bytes (hex) as spaced hex and text, the bytes that differ from `other` in brackets. */
export function bytesLine(hex: string, other: string): string {
  let h = '';
  let t = '';
  for (let i = 0; i < hex.length; i += 2) {
    const b = hex.slice(i, i + 2);
    const c = parseInt(b, 16);
    const ch = c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
    const differs = b !== other.slice(i, i + 2);
    h += differs ? `[${b}]` : ` ${b} `;
    t += ch;
  }
  return `${h.trimEnd()}  |${t}|`;
}

/** A frame's first 64 bytes as a string: unique per frame in the demo's traffic (sequence numbers, ids). */
function frameKey(f: Uint8Array): string {
  return Buffer.from(f.buffer, f.byteOffset, Math.min(64, f.length)).toString('latin1');
}
