// netrr replay --log FILE --guest SPEC [--pacing causal|recorded|fast] [--speed X] [--continue] …

import { NetrrError } from '../errors.ts';
import { Replayer } from '../app/replayer.ts';
import { DEFAULT_REORDER_WINDOW, DEFAULT_REPLAY_TIMEOUT_MS, type Pacing } from '../engine/replay/replay-engine.ts';
import { runService } from './service.ts';

/** Exit statuses: 0 the replay matched; 1 it diverged or the guest left before the end; 130 interrupted (SIGINT, SIGTERM or quit) before it was over. */
export async function replayCommand(o: { log: string; guest: string; pacing?: string; speed?: string; timeout?: number; continue?: boolean; report?: string; reportPcap?: string; window?: number; lookaheadBytes?: number; control?: string }): Promise<number> {
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
  r.events.on((e) => {
    if (e.name === 'REPLAY_DIVERGENCE') process.stdout.write(`divergence: ${JSON.stringify(e.data)}\n`);
    else if (e.name === 'REPLAY_WAITING') process.stderr.write(`netrr replay: waiting for the guest to connect on ${o.guest} (up to 24 h; SIGINT stops)\n`);
    else if (e.name === 'REPLAY_GUEST_DISCONNECTED') process.stderr.write(`netrr replay: the guest disconnected mid-replay: ${JSON.stringify(e.data)}\n`);
  });
  const status = await runService(r, o.control !== undefined ? { control: o.control } : {});
  const verdict = r.result === null ? 'INTERRUPTED' : r.result.matched ? 'MATCHED' : 'guestDisconnectedAfterMs' in r.result.summary ? 'GUEST-DISCONNECTED' : 'DIVERGED';
  process.stdout.write(`replay: ${verdict} ${JSON.stringify(r.result?.summary ?? r.summary())}\n`);
  return status;
}
