// Runs a long-lived app under the CLI: optional control socket with
// query-status and quit (plus the app's own commands), SIGINT/SIGTERM, and
// one clean stop.

import { ControlServer, type CommandHandler } from '../control/control-server.ts';
import { VERSION } from './version.ts';

export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
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
  let stopping: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await service.stop();
      control?.emit('SHUTDOWN', {});
      await control?.close();
      resolveDone();
    })();
    return stopping;
  };
  const emit = (event: string, data: Record<string, unknown>): void => {
    control?.emit(event, data);
    if (event === 'ENDPOINT_ERROR' || event.endsWith('_ERROR')) process.stderr.write(`netrr ${opts.name}: ${String(data.endpoint ?? event)}: ${String(data.detail ?? '')}\n`);
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
}
