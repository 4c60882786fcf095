// netrr control unix:PATH COMMAND [JSON-ARGUMENTS]: one request, one reply.

import { NetrrError } from '../errors.ts';
import { ControlClient } from '../control/control-client.ts';

export async function controlCommand(socket: string, command: string, argsJson: string | undefined): Promise<void> {
  let args: Record<string, unknown> | undefined;
  if (argsJson !== undefined) {
    try {
      args = JSON.parse(argsJson) as Record<string, unknown>;
    } catch {
      throw new NetrrError('ERR_USAGE', `arguments must be a JSON object, got ${JSON.stringify(argsJson)}`);
    }
  }
  const client = await ControlClient.connect(socket);
  try {
    const result = await client.execute(command, args);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    client.close();
  }
}
