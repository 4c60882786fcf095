// netrr demo [--guests] [--duration-ms N] [--file-bytes N] [--host H] [--port N] [--linger-ms N] [--json]
// What netrr is for, in about ten seconds: with nothing but Node (app/demo.ts),
// or with two real QEMU guests as the replicas (app/demo-guests.ts).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_DURATION_MS, Demo, checkDemo, formatSummary } from '../app/demo.ts';
import { GuestDemo, checkGuestDemo, formatGuestSummary } from '../app/demo-guests.ts';
import { DEFAULT_DEMO_TRAFFIC, DEMO_MSS } from '../engine/demo-traffic.ts';
import { NetrrError } from '../errors.ts';
import { QEMU_BINARY } from '../io/qemu-process.ts';

export interface DemoCommandOptions {
  durationMs?: number;
  fileBytes?: number;
  host?: string;
  port?: number;
  lingerMs?: number;
  json?: boolean;
  guests?: boolean;
}

/** The repository's root (this file is dist/src/cli/cmd-demo.js there). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The guest demo's download: 4 MiB, as the built-in demo's. */
const GUEST_DEMO_FILE_BYTES = 4 * 1024 * 1024;

const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** Runs either demo: its summary (JSON or text), then its own check; it closes whatever happens. */
async function runDemo<S>(demo: { run(): Promise<S>; close(): Promise<void> }, format: (s: S) => string, check: (s: S) => void, json: boolean): Promise<void> {
  try {
    const summary = await demo.run();
    say(json ? JSON.stringify(summary) : format(summary));
    check(summary);
  } finally {
    await demo.close();
  }
}

export async function demoCommand(o: DemoCommandOptions): Promise<void> {
  const page = { host: o.host ?? '127.0.0.1', port: o.port ?? 0, lingerMs: o.lingerMs ?? 0, log: say };
  if (o.guests === true) {
    if (spawnSync(QEMU_BINARY, ['--version']).status !== 0) {
      throw new NetrrError('ERR_FILE_NOT_FOUND', `--guests needs QEMU (${QEMU_BINARY}; on Debian: apt-get install qemu-system-x86)`);
    }
    const guestDir = join(ROOT, '.cache/guest');
    if (!existsSync(join(guestDir, 'initrd.gz'))) {
      say('netrr demo --guests: building the test guest first (scripts/build-guest.sh)');
      if (spawnSync('bash', [join(ROOT, 'scripts/build-guest.sh')], { stdio: 'inherit' }).status !== 0) throw new NetrrError('ERR_IO', 'scripts/build-guest.sh failed');
    }
    return runDemo(new GuestDemo({ ...page, fileBytes: o.fileBytes ?? GUEST_DEMO_FILE_BYTES, guestDir }), formatGuestSummary, checkGuestDemo, o.json === true);
  }
  const fileBytes = o.fileBytes ?? DEFAULT_DEMO_TRAFFIC.fileBytes;
  // The divergence: one byte a third of the way into the download.
  const divergeSegment = Math.floor(fileBytes / DEMO_MSS / 3);
  const demo = new Demo({ ...page, durationMs: o.durationMs ?? DEMO_DURATION_MS, traffic: { ...DEFAULT_DEMO_TRAFFIC, fileBytes, divergeSegment, divergeOffset: 100 } });
  return runDemo(demo, formatSummary, checkDemo, o.json === true);
}
