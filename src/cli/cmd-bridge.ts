// netrr bridge --a SPEC --b SPEC [--capture FILE] [--control unix:PATH]
// Runs until SIGINT/SIGTERM or the control command `quit`.

import { Bridge } from '../app/bridge.ts';
import { runService } from './service.ts';

export async function bridgeCommand(opts: { a: string; b: string; capture?: string; control?: string }): Promise<void> {
  await runService(new Bridge(opts), opts.control !== undefined ? { control: opts.control } : {});
}
