// netrr demo [--duration-ms N] [--file-bytes N] [--host H] [--port N] [--linger-ms N] [--json]
// What netrr is for, in about ten seconds, with nothing but Node: see app/demo.ts.

import { Demo, checkDemo, formatSummary, DEMO_DURATION_MS } from '../app/demo.ts';
import { GuestDemo, checkGuestDemo, formatGuestSummary } from '../app/demo-guests.ts';
import { DEFAULT_DEMO_TRAFFIC, DEMO_MSS } from '../engine/demo-traffic.ts';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { NetrrError } from '../errors.ts';

export interface DemoCommandOptions {
  durationMs?: number;
  fileBytes?: number;
  host?: string;
  port?: number;
  lingerMs?: number;
  json?: boolean;
  guests?: boolean;
}

export async function demoCommand(o: DemoCommandOptions): Promise<void> {
  if (o.guests === true) return guestDemo(o);
  const fileBytes = o.fileBytes ?? DEFAULT_DEMO_TRAFFIC.fileBytes;
  // The divergence: one byte a third of the way into the download.
  const divergeSegment = Math.floor(fileBytes / DEMO_MSS / 3);
  const demo = new Demo({
    durationMs: o.durationMs ?? DEMO_DURATION_MS,
    traffic: { ...DEFAULT_DEMO_TRAFFIC, fileBytes, divergeSegment, divergeOffset: 100 },
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    lingerMs: o.lingerMs ?? 0,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  try {
    const summary = await demo.run();
    process.stdout.write(`${o.json === true ? JSON.stringify(summary) : formatSummary(summary)}\n`);
    checkDemo(summary);
  } finally {
    await demo.close();
  }
}

/** The repository's root (this file is dist/src/cli/cmd-demo.js there). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The guest demo's download: 4 MiB, as the built-in demo's. */
const GUEST_DEMO_FILE_BYTES = 4 * 1024 * 1024;

async function guestDemo(o: DemoCommandOptions): Promise<void> {
  if (spawnSync(process.env.NETRR_QEMU ?? 'qemu-system-x86_64', ['--version']).status !== 0) {
    throw new NetrrError('ERR_FILE_NOT_FOUND', '--guests needs QEMU (qemu-system-x86_64; on Debian: apt-get install qemu-system-x86)');
  }
  const guestDir = join(ROOT, '.cache/guest');
  if (!existsSync(join(guestDir, 'initrd.gz'))) {
    process.stdout.write('netrr demo --guests: building the test guest first (scripts/build-guest.sh)\n');
    const b = spawnSync('bash', [join(ROOT, 'scripts/build-guest.sh')], { stdio: 'inherit' });
    if (b.status !== 0) throw new NetrrError('ERR_IO', 'scripts/build-guest.sh failed');
  }
  const demo = new GuestDemo({ fileBytes: o.fileBytes ?? GUEST_DEMO_FILE_BYTES, host: o.host ?? '127.0.0.1', port: o.port ?? 0, lingerMs: o.lingerMs ?? 0, guestDir, log: (line) => process.stdout.write(`${line}\n`) });
  try {
    const summary = await demo.run();
    process.stdout.write(`${o.json === true ? JSON.stringify(summary) : formatGuestSummary(summary)}\n`);
    checkGuestDemo(summary);
  } finally {
    await demo.close();
  }
}
