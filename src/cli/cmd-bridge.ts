// netrr bridge --a SPEC --b SPEC [--capture FILE] [--control unix:PATH]
// Runs until SIGINT/SIGTERM or the control command `quit`.

import { Bridge } from '../app/bridge.ts';
import { forwardEndpointEvents } from '../io/frame-endpoint.ts';
import { runService } from './service.ts';

export async function bridgeCommand(opts: { a: string; b: string; capture?: string; control?: string }): Promise<void> {
  const bridge = new Bridge(opts);
  await runService(bridge, {
    name: 'bridge',
    ...(opts.control !== undefined ? { control: opts.control } : {}),
    bindEvents: (emit) => forwardEndpointEvents([bridge.a, bridge.b], emit),
  });
}
