// A replay engine over an in-memory log, with its sink collected: what was
// injected, the divergences, and whether it finished.

import { type LoggedFrame, type ReplayDivergence, ReplayEngine, type ReplayOptions } from '../../src/engine/replay/replay-engine.ts';

export function replayRig(records: LoggedFrame[], opts: Partial<ReplayOptions> = {}): { e: ReplayEngine; injected: Uint8Array[]; divs: ReplayDivergence[]; isFinished: () => boolean } {
  const injected: Uint8Array[] = [];
  const divs: ReplayDivergence[] = [];
  let finished = false;
  const e = new ReplayEngine(records, { pacing: 'causal', speed: 1, timeoutMs: 1000, continueOnDivergence: false, window: 8, ...opts }, {
    inject: (f) => injected.push(f),
    divergence: (d) => divs.push(d),
    finished: () => (finished = true),
  });
  return { e, injected, divs, isFinished: () => finished };
}
