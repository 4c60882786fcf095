// Runs a long-lived app under the CLI: optional control socket with
// query-status and quit (plus the app's own commands), SIGINT/SIGTERM, one
// clean stop, and a fatal error path: an app that cannot go on (a log the
// disk refuses) stops and the command exits with that error's code.
// Error events go to stderr through a rate limit: one line per kind, then a
// summary of the repeats (never one line per error in a storm).

import { ControlServer, type CommandHandler } from '../control/control-server.ts';
import { LineLimiter } from '../engine/line-limiter.ts';
import type { NetrrError } from '../errors.ts';
import { VERSION } from './version.ts';

export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
  /** Set by runService: the app calls it when it cannot go on; the command stops and exits with the error. */
  onFatal?: (err: NetrrError) => void;
}

export interface ServiceOptions {
  readonly name: string;
  readonly control?: string;
  readonly commands?: Record<string, { help: string; handler: CommandHandler }>;
  /** Receives the emitter once the control socket (if any) is up. */
  readonly bindEvents?: (emit: (event: string, data: Record<string, unknown>) => void) => void;
}

export async function runService(service: Service, opts: ServiceOptions): Promise<void> {
  const control = opts.control !== undefined ? new ControlServer(opts.control, VERSION) : null;
  const limiter = new LineLimiter();
  const stderrLines = (lines: readonly string[]): void => {
    for (const l of lines) process.stderr.write(`netrr ${opts.name}: ${l}\n`);
  };
  const summaries = setInterval(() => stderrLines(limiter.flush(Date.now())), limiter.windowMs);
  summaries.unref();
  let fatal: NetrrError | null = null;
  let stopping: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await service.stop();
      control?.emit('SHUTDOWN', fatal !== null ? { reason: 'fatal-error', code: fatal.code } : {});
      await control?.close();
      clearInterval(summaries);
      stderrLines(limiter.flush(Date.now(), true));
      resolveDone();
    })();
    return stopping;
  };
  const emit = (event: string, data: Record<string, unknown>): void => {
    control?.emit(event, data);
    if (event.endsWith('_ERROR')) {
      const who = String(data.endpoint ?? event);
      const code = data.code !== undefined ? ` [${String(data.code)}]` : '';
      stderrLines(limiter.offer(`${who}${code}`, `${who}: ${String(data.detail ?? '')}${code}`, Date.now()));
    }
  };
  service.onFatal = (err) => {
    if (fatal !== null) return;
    fatal = err;
    control?.emit('FATAL_ERROR', { code: err.code, detail: err.message });
    // The CLI prints the error's one line when the stop is done and exits with its status.
    void stop();
  };
  opts.bindEvents?.(emit);
  if (control !== null) {
    control.register('query-status', `${opts.name} state and every counter`, () => ({ running: true, version: VERSION, ...service.status() }));
    control.register('quit', `stop ${opts.name} cleanly`, () => {
      setImmediate(() => void stop());
      return {};
    });
    for (const [name, c] of Object.entries(opts.commands ?? {})) control.register(name, c.help, c.handler);
    await control.listen();
  }
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await service.start();
  await done;
  if (fatal !== null) throw fatal;
}
