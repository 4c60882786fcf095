// Runs one app (src/app/app.ts) under the CLI: optional control socket with
// query-status, query-counters and quit plus the app's own commands,
// SIGINT/SIGTERM, one clean stop, and a fatal error path: an app that cannot
// go on (a log the disk refuses) stops and the command exits with that
// error's code. Error events go to stderr through a rate limit: one line per
// kind, then a summary of the repeats (never one line per error in a storm).

import type { App } from '../app/app.ts';
import { ControlServer } from '../control/control-server.ts';
import { LineLimiter } from '../engine/line-limiter.ts';
import type { NetrrError } from '../errors.ts';
import { VERSION } from './version.ts';

export interface ServiceOptions {
  /** The command's name in stderr lines (default: the app's kind). */
  readonly name?: string;
  readonly control?: string;
}

/** Exit status of an app that ends by itself (a replay) when it was stopped before its end: 128 + SIGINT, as a shell reports it. */
export const EXIT_INTERRUPTED = 130;

/** Runs `app` until a signal, `quit`, a fatal error or (for an app that ends by itself) its end; resolves with its exit status. */
export async function runService(app: App, opts: ServiceOptions = {}): Promise<number> {
  const name = opts.name ?? app.kind;
  const control = opts.control !== undefined ? new ControlServer(opts.control, VERSION) : null;
  const limiter = new LineLimiter();
  const stderrLines = (lines: readonly string[]): void => {
    for (const l of lines) process.stderr.write(`netrr ${name}: ${l}\n`);
  };
  const summaries = setInterval(() => stderrLines(limiter.flush(Date.now())), limiter.windowMs);
  summaries.unref();
  let fatal: NetrrError | null = null;
  let stopping: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await app.stop();
      control?.emit('SHUTDOWN', fatal !== null ? { reason: 'fatal-error', code: fatal.code } : {});
      await control?.close();
      clearInterval(summaries);
      stderrLines(limiter.flush(Date.now(), true));
      resolveDone();
    })();
    return stopping;
  };
  app.events.on(({ name: event, data }) => {
    control?.emit(event, data);
    if (event.endsWith('_ERROR')) {
      const who = String(data.endpoint ?? event);
      const code = data.code !== undefined ? ` [${String(data.code)}]` : '';
      stderrLines(limiter.offer(`${who}${code}`, `${who}: ${String(data.detail ?? '')}${code}`, Date.now()));
    }
  });
  app.onFatal = (err) => {
    if (fatal !== null) return;
    fatal = err;
    control?.emit('FATAL_ERROR', { code: err.code, detail: err.message });
    // The CLI prints the error's one line when the stop is done and exits with its status.
    void stop();
  };
  if (control !== null) {
    control.register('query-status', `${name} state, configuration and every counter`, () => ({ running: true, version: VERSION, kind: app.kind, ...app.status() }));
    control.register('query-counters', `${name} counters only, as a tree of numbers`, () => app.counterTree());
    control.register('quit', `stop ${name} cleanly`, () => {
      setImmediate(() => void stop());
      return {};
    });
    control.register('reopen', `${name}: reopen the files written through a handle, as SIGHUP does (pcapng captures start over at their paths)`, async () => {
      await app.reopen?.();
      return {};
    });
    for (const [cmd, c] of Object.entries(app.commands)) control.register(cmd, c.help, c.handler);
    await control.listen();
  }
  const onSignal = (): void => void stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // logrotate: files written through a handle (pcapng captures) start over at their paths.
  const onHup = (): void => void app.reopen?.().catch((e: unknown) => stderrLines([`SIGHUP: reopen failed: ${e instanceof Error ? e.message : String(e)}`]));
  process.on('SIGHUP', onHup);
  await app.start();
  let status = 0;
  let ended = false;
  if (app.finished !== undefined) {
    void app.finished.then(
      (s) => {
        status = s;
        ended = true;
        void stop();
      },
      (e: unknown) => {
        app.onFatal(e as NetrrError);
      },
    );
  }
  await done;
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGHUP', onHup);
  if (fatal !== null) throw fatal;
  // An app that ends by itself but was stopped first (a signal, quit) did not finish: a status of its own, as a shell gives SIGINT.
  return app.finished !== undefined && !ended ? EXIT_INTERRUPTED : status;
}
