// `netrr run CONFIG`: several instances (compare proxies, chains, recorders,
// bridges) in one process, built by the same functions as the single-instance
// commands, run by the same runner (runner.ts) behind one control socket (each
// command once, taking "instance") and one live page with /metrics; the
// operator log goes through pino (src/io/logger.ts), and each instance's
// counters are logged when it stops.

import type { App } from '../app/app.ts';
import { NetrrError, isNetrrError } from '../errors.ts';
import { bridgeApp } from './cmd-bridge.ts';
import { chainApp } from './cmd-chain.ts';
import { compareApp } from './cmd-compare.ts';
import { recordApp } from './cmd-log.ts';
import { type DaemonConfig, type InstanceConfig, filterString } from './run-config.ts';
import { type Instance, type RunnerLog, runApps } from './runner.ts';
import { type Logger, createLogger } from '../io/logger.ts';

export type { Instance } from './runner.ts';


/** The instance's keys as the single-instance command's options (kebab-case to camelCase, as commander names them). */
function cliOptions(inst: InstanceConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inst)) {
    if (k === 'name' || k === 'kind' || k === 'filters' || v === undefined) continue;
    o[k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  }
  return o;
}

/** Builds every instance (validating what the schema cannot: endpoint specs, filter lists); nothing opens yet. */
export function buildInstances(cfg: DaemonConfig, file = 'config'): Instance[] {
  const problems: string[] = [];
  const out: Instance[] = [];
  cfg.instances.forEach((inst, i) => {
    try {
      const o = cliOptions(inst);
      let app: App;
      if (inst.kind === 'compare') app = compareApp(o as unknown as Parameters<typeof compareApp>[0]);
      else if (inst.kind === 'chain') app = chainApp({ ...(o as unknown as Parameters<typeof chainApp>[0]), filter: [...(inst.filter ?? []), ...(inst.filters ?? []).map(filterString)] });
      else if (inst.kind === 'record') app = recordApp(o as unknown as Parameters<typeof recordApp>[0]);
      else app = bridgeApp(o as unknown as Parameters<typeof bridgeApp>[0]);
      out.push({ name: inst.name, app });
    } catch (e) {
      if (!isNetrrError(e)) throw e;
      problems.push(`instances[${i}] (${inst.name}): ${e.message}`);
    }
  });
  if (problems.length > 0) throw new NetrrError('ERR_CONFIG', `${file}: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n  ${problems.join('\n  ')}`);
  return out;
}

/** Runs the instances until a signal, `quit` or a fatal error (runner.ts); resolves with the exit status. */
export function runDaemon(cfg: DaemonConfig, instances: readonly Instance[], log: Logger = createLogger('netrr run')): Promise<number> {
  const runnerLog: RunnerLog = {
    info: (msg, fields) => (fields !== undefined ? log.info(fields, msg) : log.info(msg)),
    warn: (msg) => log.warn(msg),
    error: (msg) => log.error(msg),
  };
  return runApps(instances, { control: cfg.control, metrics: cfg.metrics, log: runnerLog });
}
