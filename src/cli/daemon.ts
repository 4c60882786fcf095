// `netrr run CONFIG`: several instances (compare proxies, chains, recorders,
// bridges) in one process, built by the same functions as the single-instance
// commands, behind one control socket and one live page with /metrics.
//   - Control: QMP's shape; every app command is there once, and takes
//     "instance" (needed when more than one instance has the command);
//     query-instances, query-status / query-counters (one instance or all),
//     query-events (the last events, each with its instance), quit.
//   - Events carry their instance: {"event": "CHECKPOINT_REQUEST", "data": {"instance": "colo0", …}}.
//   - SIGINT/SIGTERM stop every instance (buffers follow their policy, logs
//     close with their footer) and print each one's counters; a second SIGINT
//     exits at once. A fatal error in one instance stops them all.

import type { App } from '../app/app.ts';
import { LiveServer } from '../app/live/live-server.ts';
import { ControlServer } from '../control/control-server.ts';
import { LineLimiter } from '../engine/line-limiter.ts';
import { NetrrError, isNetrrError } from '../errors.ts';
import { bridgeApp } from './cmd-bridge.ts';
import { chainApp } from './cmd-chain.ts';
import { compareApp } from './cmd-compare.ts';
import { recordApp } from './cmd-log.ts';
import { type DaemonConfig, type InstanceConfig, filterString } from './run-config.ts';
import { EXIT_INTERRUPTED } from './service.ts';
import { VERSION } from './version.ts';
import { type Logger, createLogger } from '../io/logger.ts';

/** Events kept for query-events. */
export const DAEMON_EVENT_RING = 256;

export interface Instance {
  readonly name: string;
  readonly app: App;
}

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

function parseHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

/** Runs the instances until a signal, `quit` or a fatal error; resolves with the exit status. */
export async function runDaemon(cfg: DaemonConfig, instances: readonly Instance[], log: Logger = createLogger('netrr run')): Promise<number> {
  const control = cfg.control !== undefined ? new ControlServer(cfg.control, VERSION) : null;
  const live = cfg.metrics !== undefined ? new LiveServer({ ...parseHostPort(cfg.metrics), instances: () => instances }) : null;
  const byName = new Map(instances.map((i) => [i.name, i]));
  const limiter = new LineLimiter();
  const summaries = setInterval(() => limiter.flush(Date.now()).forEach((l) => log.warn(l)), limiter.windowMs);
  summaries.unref();
  const recent: { instance: string; event: string; data: Record<string, unknown>; time: number }[] = [];
  let fatal: NetrrError | null = null;
  let stopping: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const pick = (args: Record<string, unknown>, command: string): Instance[] => {
    if (args.instance === undefined) return [...instances];
    if (typeof args.instance !== 'string' || !byName.has(args.instance)) throw new NetrrError('ERR_BAD_OPTION', `${command}: no instance "${String(args.instance)}" (instances: ${instances.map((i) => i.name).join(', ')})`);
    return [byName.get(args.instance)!];
  };
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const i of instances) {
        try {
          await i.app.stop();
        } catch (e) {
          log.error({ instance: i.name }, `stop failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        log.info({ instance: i.name, kind: i.app.kind, counters: i.app.counterTree() }, 'stopped');
      }
      control?.emit('SHUTDOWN', fatal !== null ? { reason: 'fatal-error', code: fatal.code } : {});
      await control?.close();
      await live?.close();
      clearInterval(summaries);
      limiter.flush(Date.now(), true).forEach((l) => log.warn(l));
      resolveDone();
    })();
    return stopping;
  };

  for (const { name, app } of instances) {
    app.events.on(({ name: event, data }) => {
      control?.emit(event, { instance: name, ...data });
      recent.push({ instance: name, event, data, time: Date.now() });
      if (recent.length > DAEMON_EVENT_RING) recent.shift();
      if (event.endsWith('_ERROR')) {
        const who = `${name}: ${String(data.endpoint ?? event)}`;
        const code = data.code !== undefined ? ` [${String(data.code)}]` : '';
        limiter.offer(`${who}${code}`, `${who}: ${String(data.detail ?? '')}${code}`, Date.now()).forEach((l) => log.warn(l));
      }
    });
    app.onFatal = (err) => {
      if (fatal !== null) return;
      fatal = err;
      control?.emit('FATAL_ERROR', { instance: name, code: err.code, detail: err.message });
      void stop();
    };
  }

  if (control !== null) {
    control.register('query-instances', 'every instance: name, kind', () => instances.map((i) => ({ name: i.name, kind: i.app.kind })));
    control.register('query-status', 'state, configuration and counters: {"instance"?} (all when omitted)', (a) => {
      const list = pick(a, 'query-status');
      if (a.instance !== undefined) return { running: true, version: VERSION, name: list[0]!.name, kind: list[0]!.app.kind, ...list[0]!.app.status() };
      return { running: true, version: VERSION, instances: Object.fromEntries(list.map((i) => [i.name, { kind: i.app.kind, ...i.app.status() }])) };
    });
    control.register('query-counters', 'counters as a tree of numbers: {"instance"?} (all when omitted, by name)', (a) => {
      const list = pick(a, 'query-counters');
      return a.instance !== undefined ? list[0]!.app.counterTree() : Object.fromEntries(list.map((i) => [i.name, i.app.counterTree()]));
    });
    control.register('query-events', `the last ${DAEMON_EVENT_RING} events, oldest first: {"instance"?}`, (a) => {
      const only = a.instance !== undefined ? pick(a, 'query-events')[0]!.name : null;
      return recent.filter((e) => only === null || e.instance === only);
    });
    control.register('reopen', 'reopen the files written through a handle, as SIGHUP does: {"instance"?} (all when omitted)', async (a) => {
      const list = pick(a, 'reopen');
      await Promise.all(list.map((i) => i.app.reopen?.()));
      return { reopened: list.map((i) => i.name) };
    });
    control.register('quit', 'stop every instance cleanly', () => {
      setImmediate(() => void stop());
      return {};
    });
    const commandNames = new Set(instances.flatMap((i) => Object.keys(i.app.commands)));
    for (const cmd of commandNames) {
      const owners = instances.filter((i) => cmd in i.app.commands);
      const help = `${owners[0]!.app.commands[cmd]!.help} — on ${owners.map((o) => o.name).join(', ')}${owners.length > 1 ? ' ("instance" required)' : ''}`;
      control.register(cmd, help, (a) => {
        let target: Instance;
        if (a.instance !== undefined) {
          target = pick(a, cmd)[0]!;
          if (!(cmd in target.app.commands)) throw new NetrrError('ERR_BAD_OPTION', `${cmd}: instance "${target.name}" (${target.app.kind}) has no such command`);
        } else if (owners.length === 1) target = owners[0]!;
        else throw new NetrrError('ERR_BAD_OPTION', `${cmd}: say which instance ("instance": one of ${owners.map((o) => o.name).join(', ')})`);
        const { instance: _, ...rest } = a;
        return target.app.commands[cmd]!.handler(rest);
      });
    }
    await control.listen();
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (sig === 'SIGINT' && signals > 1) process.exit(EXIT_INTERRUPTED);
    log.info({ signal: sig }, `stopping ${instances.length} instance${instances.length > 1 ? 's' : ''} (SIGINT again exits at once)`);
    void stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // logrotate: files written through a handle start over at their paths.
  const onHup = (): void => {
    void Promise.all(instances.map((i) => i.app.reopen?.())).then(
      () => log.info('SIGHUP: files reopened'),
      (e: unknown) => log.error(`SIGHUP: reopen failed: ${e instanceof Error ? e.message : String(e)}`),
    );
  };
  process.on('SIGHUP', onHup);
  try {
    for (const i of instances) await i.app.start();
    if (live !== null) log.info({ url: await live.start() }, 'live page and /metrics');
    log.info({ instances: instances.map((i) => `${i.name} (${i.app.kind})`) }, 'running');
  } catch (e) {
    if (isNetrrError(e)) fatal ??= e;
    await stop();
    throw e;
  }
  await done;
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGHUP', onHup);
  if (fatal !== null) throw fatal;
  return 0;
}
