// netrr run CONFIG [--check]: the daemon (daemon.ts) from a validated config (run-config.ts).

import { buildInstances, runDaemon } from './daemon.ts';
import { loadConfig } from './run-config.ts';

export async function runCommand(file: string, o: { check?: boolean }): Promise<number> {
  const cfg = loadConfig(file);
  const instances = buildInstances(cfg, file);
  if (o.check === true) {
    process.stdout.write(`${file}: valid; ${instances.length} instance${instances.length > 1 ? 's' : ''}: ${instances.map((i) => `${i.name} (${i.app.kind})`).join(', ')}\n`);
    return 0;
  }
  return runDaemon(cfg, instances);
}
