// The one runner for apps (src/app/app.ts): a single command's app and the
// daemon's instances go through the same start, event forwarding (error
// events rate-limited: one line per kind, then a summary of the repeats),
// control socket, signals, fatal path and one clean stop.
//   - SIGINT/SIGTERM stop every app (buffers follow their policy, logs close
//     with their footer); a second SIGINT exits at once. SIGHUP, and the
//     `reopen` command, reopen files written through a handle (logrotate).
//   - A fatal error in one app (a log the disk refuses) stops them all; the
//     run ends with that error (the CLI prints its line and exits with its status).
//   - The control socket has two shapes. `single`: the app's commands as they
//     are and query-status answering for it (what each command has always
//     offered). Otherwise every command of an instance is there once and takes
//     "instance" (needed when more than one instance has it), events carry their
//     instance, plus query-instances and query-events.

import type { App } from '../app/app.ts';
import { LiveServer } from '../app/live/live-server.ts';
import { ControlServer } from '../control/control-server.ts';
import { LineLimiter } from '../engine/line-limiter.ts';
import { NetrrError, isNetrrError } from '../errors.ts';
import { VERSION } from './version.ts';

/** Exit status of an app that ends by itself (a replay) when it was stopped before its end: 128 + SIGINT, as a shell reports it. */
export const EXIT_INTERRUPTED = 130;
/** Events kept for query-events. */
export const EVENT_RING = 256;

export interface Instance {
  readonly name: string;
  readonly app: App;
}

/** Where the runner's own lines go: stderr lines for a single command, the operator log (pino) for the daemon. */
export interface RunnerLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface RunnerOptions {
  readonly control?: string | undefined;
  /** HOST:PORT for the live page and /metrics. */
  readonly metrics?: string | undefined;
  /** One app run by its own command: the control socket keeps that command's shape. */
  readonly single?: boolean;
  readonly log: RunnerLog;
}

function parseHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

/**
 * Runs the apps until a signal, `quit`, a fatal error or (a single app that
 * ends by itself, a replay) its end; resolves with the exit status.
 */
export async function runApps(instances: readonly Instance[], opts: RunnerOptions): Promise<number> {
  const log = opts.log;
  const single = opts.single === true && instances.length === 1 ? instances[0]!.app : null;
  const control = opts.control !== undefined ? new ControlServer(opts.control, VERSION) : null;
  const live = opts.metrics !== undefined ? new LiveServer({ ...parseHostPort(opts.metrics), instances: () => instances }) : null;
  const limiter = new LineLimiter();
  const summaries = setInterval(() => limiter.flush(Date.now()).forEach((l) => log.warn(l)), limiter.windowMs);
  summaries.unref();
  const recent: { instance: string; event: string; data: Record<string, unknown>; time: number }[] = [];
  let fatal: NetrrError | null = null;
  let stopping: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const i of instances) {
        try {
          await i.app.stop();
        } catch (e) {
          log.error(`${single === null ? `${i.name}: ` : ''}stop failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (single === null) log.info('stopped', { instance: i.name, kind: i.app.kind, counters: i.app.counterTree() });
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
      control?.emit(event, single !== null ? data : { instance: name, ...data });
      recent.push({ instance: name, event, data, time: Date.now() });
      if (recent.length > EVENT_RING) recent.shift();
      if (event.endsWith('_ERROR')) {
        const who = `${single !== null ? '' : `${name}: `}${String(data.endpoint ?? event)}`;
        const code = data.code !== undefined ? ` [${String(data.code)}]` : '';
        limiter.offer(`${who}${code}`, `${who}: ${String(data.detail ?? '')}${code}`, Date.now()).forEach((l) => log.warn(l));
      }
    });
    app.onFatal = (err) => {
      if (fatal !== null) return;
      fatal = err;
      control?.emit('FATAL_ERROR', single !== null ? { code: err.code, detail: err.message } : { instance: name, code: err.code, detail: err.message });
      void stop();
    };
  }

  const reopen = async (list: readonly Instance[]): Promise<void> => {
    await Promise.all(list.map((i) => i.app.reopen?.()));
  };
  if (control !== null) {
    if (single !== null) registerSingle(control, single, () => void stop(), () => reopen(instances));
    else registerMany(control, instances, recent, () => void stop(), reopen);
    await control.listen();
  }

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (sig === 'SIGINT' && signals > 1) process.exit(EXIT_INTERRUPTED);
    if (single === null) log.info(`stopping ${instances.length} instance${instances.length > 1 ? 's' : ''} (SIGINT again exits at once)`, { signal: sig });
    void stop();
  };
  const onHup = (): void => {
    reopen(instances).then(
      () => log.info('SIGHUP: files reopened'),
      (e: unknown) => log.error(`SIGHUP: reopen failed: ${e instanceof Error ? e.message : String(e)}`),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHup);

  let status = 0;
  let ended = false;
  try {
    try {
      for (const i of instances) await i.app.start();
      if (live !== null) log.info('live page and /metrics', { url: await live.start() });
      if (single === null) log.info('running', { instances: instances.map((i) => `${i.name} (${i.app.kind})`) });
      const finished = single?.finished;
      if (finished !== undefined) {
        finished.then(
          (s) => {
            status = s;
            ended = true;
            void stop();
          },
          (e: unknown) => single!.onFatal(e as NetrrError),
        );
      }
    } catch (e) {
      if (isNetrrError(e)) fatal ??= e;
      await stop();
      throw e;
    }
    await done;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGHUP', onHup);
  }
  if (fatal !== null) throw fatal;
  // An app that ends by itself but was stopped first (a signal, quit) did not finish: a status of its own, as a shell gives SIGINT.
  return single?.finished !== undefined && !ended ? EXIT_INTERRUPTED : status;
}

/** A single command's control socket: its app's commands as they are. */
function registerSingle(control: ControlServer, app: App, quit: () => void, reopen: () => Promise<void>): void {
  control.register('query-status', `${app.kind} state, configuration and every counter`, () => ({ running: true, version: VERSION, kind: app.kind, ...app.status() }));
  control.register('query-counters', `${app.kind} counters only, as a tree of numbers`, () => app.counterTree());
  control.register('reopen', 'reopen the files written through a handle, as SIGHUP does (pcapng captures start over at their paths)', async () => {
    await reopen();
    return {};
  });
  control.register('quit', `stop ${app.kind} cleanly`, () => {
    setImmediate(quit);
    return {};
  });
  for (const [cmd, c] of Object.entries(app.commands)) control.register(cmd, c.help, c.handler);
}

/** The daemon's control socket: every command once, dispatched on "instance". */
function registerMany(
  control: ControlServer,
  instances: readonly Instance[],
  recent: readonly { instance: string; event: string; data: Record<string, unknown>; time: number }[],
  quit: () => void,
  reopen: (list: readonly Instance[]) => Promise<void>,
): void {
  const byName = new Map(instances.map((i) => [i.name, i]));
  const pick = (args: Record<string, unknown>, command: string): Instance[] => {
    if (args.instance === undefined) return [...instances];
    if (typeof args.instance !== 'string' || !byName.has(args.instance)) throw new NetrrError('ERR_BAD_OPTION', `${command}: no instance "${String(args.instance)}" (instances: ${instances.map((i) => i.name).join(', ')})`);
    return [byName.get(args.instance)!];
  };
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
  control.register('query-events', `the last ${EVENT_RING} events, oldest first: {"instance"?}`, (a) => {
    const only = a.instance !== undefined ? pick(a, 'query-events')[0]!.name : null;
    return recent.filter((e) => only === null || e.instance === only);
  });
  control.register('reopen', 'reopen the files written through a handle, as SIGHUP does: {"instance"?} (all when omitted)', async (a) => {
    const list = pick(a, 'reopen');
    await reopen(list);
    return { reopened: list.map((i) => i.name) };
  });
  control.register('quit', 'stop every instance cleanly', () => {
    setImmediate(quit);
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
}
