// netrr bridge --a SPEC --b SPEC [--capture FILE] [--control unix:PATH]
// Runs until SIGINT/SIGTERM or the control command `quit`.

import { Bridge } from '../app/bridge.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { runService } from './service.ts';

export async function bridgeCommand(opts: { a: string; b: string; capture?: string; control?: string }): Promise<void> {
  const bridge = new Bridge(opts);
  await runService(bridge, {
    name: 'bridge',
    ...(opts.control !== undefined ? { control: opts.control } : {}),
    bindEvents: (emit) => {
      const forward = (ep: FrameEndpoint): void => {
        ep.onEvent = (e) => {
          const data: Record<string, unknown> = { endpoint: e.endpoint };
          if (e.detail !== undefined) data.detail = e.detail;
          if (e.code !== undefined) data.code = e.code;
          emit(`ENDPOINT_${e.type.toUpperCase().replace('-', '_')}`, data);
        };
      };
      forward(bridge.a);
      forward(bridge.b);
    },
  });
}
