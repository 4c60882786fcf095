// netrr bridge --a SPEC --b SPEC [--capture FILE] [--control unix:PATH]
// Runs until SIGINT/SIGTERM or the control command `quit`.

import { Bridge } from '../app/bridge.ts';
import { ControlServer } from '../control/control-server.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { VERSION } from './version.ts';

export async function bridgeCommand(opts: { a: string; b: string; capture?: string; control?: string }): Promise<void> {
  const bridge = new Bridge(opts);
  const control = opts.control !== undefined ? new ControlServer(opts.control, VERSION) : null;
  let stopping: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await bridge.stop();
      control?.emit('SHUTDOWN', {});
      await control?.close();
      resolveDone();
    })();
    return stopping;
  };
  const forward = (ep: FrameEndpoint): void => {
    ep.onEvent = (e) => {
      const data: Record<string, unknown> = { endpoint: e.endpoint };
      if (e.detail !== undefined) data.detail = e.detail;
      if (e.code !== undefined) data.code = e.code;
      control?.emit(`ENDPOINT_${e.type.toUpperCase().replace('-', '_')}`, data);
      if (e.type === 'error') process.stderr.write(`netrr bridge: ${e.endpoint}: ${e.detail}\n`);
    };
  };
  forward(bridge.a);
  forward(bridge.b);
  if (control !== null) {
    control.register('query-status', 'endpoints, their frame counters, capture state', () => ({ running: true, version: VERSION, ...bridge.status() }));
    control.register('quit', 'stop the bridge (flushes whole records, closes the capture)', () => {
      setImmediate(() => void stop());
      return {};
    });
    await control.listen();
  }
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await bridge.start();
  await done;
}
