// Runs one app (src/app/app.ts) under its own command, through the runner
// every app shares (runner.ts): the control socket in the command's shape,
// stderr lines as `netrr NAME: …`, rate-limited.

import type { App } from '../app/app.ts';
import { type RunnerLog, runApps } from './runner.ts';

export { EXIT_INTERRUPTED } from './runner.ts';

export interface ServiceOptions {
  /** The command's name in stderr lines (default: the app's kind). */
  readonly name?: string;
  readonly control?: string;
}

/** Runs `app` until a signal, `quit`, a fatal error or (for an app that ends by itself) its end; resolves with its exit status. */
export function runService(app: App, opts: ServiceOptions = {}): Promise<number> {
  const name = opts.name ?? app.kind;
  const line = (l: string): void => void process.stderr.write(`netrr ${name}: ${l}\n`);
  // A single command says nothing while all is well; warnings and errors are its stderr lines.
  const log: RunnerLog = { info: () => {}, warn: line, error: line };
  return runApps([{ name, app }], { control: opts.control, single: true, log });
}
