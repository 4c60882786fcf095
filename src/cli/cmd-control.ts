// netrr ctl unix:PATH [COMMAND] [key=value…|JSON] [--watch]: one request, one
// reply (printed as JSON); with --watch, then every event as a JSON line until
// the socket closes or SIGINT. `netrr control` is the same command. It speaks
// to QEMU's QMP too.

import { NetrrError } from '../errors.ts';
import { ControlClient } from '../control/control-client.ts';

/** Command arguments from the words after the command: one JSON object, or key=value pairs (a value that parses as JSON is taken as such). */
export function parseCtlArguments(words: readonly string[]): Record<string, unknown> | undefined {
  if (words.length === 0) return undefined;
  if (words.length === 1 && words[0]!.trimStart().startsWith('{')) {
    try {
      const v = JSON.parse(words[0]!) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new NetrrError('ERR_USAGE', `arguments must be a JSON object or key=value pairs, got ${JSON.stringify(words[0])}`);
  }
  const out: Record<string, unknown> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new NetrrError('ERR_USAGE', `"${w}" is not key=value`);
    const raw = w.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[w.slice(0, eq)] = value;
  }
  return out;
}

export async function controlCommand(socket: string, command: string | undefined, words: readonly string[] = [], o: { watch?: boolean } = {}): Promise<void> {
  if (command === undefined && o.watch !== true) throw new NetrrError('ERR_USAGE', 'say a command (query-commands lists them), or --watch');
  const args = parseCtlArguments(words);
  const client = await ControlClient.connect(socket);
  try {
    if (command !== undefined) {
      const result = await client.execute(command, args);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    }
    if (o.watch === true) {
      for (const e of client.events) process.stdout.write(`${JSON.stringify(e)}\n`);
      client.onEvent = (e) => process.stdout.write(`${JSON.stringify(e)}\n`);
      const interrupted = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
      await Promise.race([client.closed, interrupted]);
    }
  } finally {
    client.close();
  }
}
