// netrr bridge --a SPEC --b SPEC [--capture FILE] [--control unix:PATH]
// Runs until SIGINT/SIGTERM or the control command `quit`.

import { Bridge } from '../app/bridge.ts';
import { runService } from './service.ts';

export interface BridgeCliOptions {
  a: string;
  b: string;
  capture?: string;
  control?: string;
}

export function bridgeApp(o: BridgeCliOptions): Bridge {
  return new Bridge({ a: o.a, b: o.b, ...(o.capture !== undefined ? { capture: o.capture } : {}) });
}

export async function bridgeCommand(o: BridgeCliOptions): Promise<void> {
  await runService(bridgeApp(o), o.control !== undefined ? { control: o.control } : {});
}
