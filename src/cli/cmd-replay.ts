// netrr replay --log FILE --guest SPEC [--pacing causal|recorded|fast] [--speed X] [--continue] …

import { NetrrError } from '../errors.ts';
import { Replayer } from '../app/replayer.ts';
import { DEFAULT_REORDER_WINDOW, DEFAULT_REPLAY_TIMEOUT_MS, type Pacing } from '../engine/replay/replay-engine.ts';

/** Exit statuses: 0 the replay matched; 1 it diverged or did not finish. */
export async function replayCommand(o: { log: string; guest: string; pacing?: string; speed?: string; timeout?: number; continue?: boolean; report?: string; reportPcap?: string; window?: number; lookaheadBytes?: number }): Promise<number> {
  const pacing = (o.pacing ?? 'causal') as Pacing;
  const speed = o.speed === undefined ? 1 : Number(o.speed);
  if (!(speed > 0)) throw new NetrrError('ERR_BAD_OPTION', `--speed must be a positive number, not "${o.speed}"`);
  const r = new Replayer({
    log: o.log,
    guest: o.guest,
    pacing,
    speed,
    timeoutMs: o.timeout ?? DEFAULT_REPLAY_TIMEOUT_MS,
    continueOnDivergence: o.continue === true,
    window: o.window ?? DEFAULT_REORDER_WINDOW,
    ...(o.lookaheadBytes !== undefined ? { lookaheadBytes: o.lookaheadBytes } : {}),
    ...(o.report !== undefined ? { report: o.report } : {}),
    ...(o.reportPcap !== undefined ? { reportPcap: o.reportPcap } : {}),
  });
  r.onLine = (l) => process.stdout.write(`${l}\n`);
  let stopping = false;
  const stop = (): void => {
    if (!stopping) {
      stopping = true;
      void r.stop().then(() => process.exit(1));
    }
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const result = await r.run();
  await r.stop();
  const s = result.summary;
  process.stdout.write(`replay: ${result.matched ? 'MATCHED' : 'DIVERGED'} ${JSON.stringify(s)}\n`);
  return result.matched ? 0 : 1;
}
