// netrr demo [--duration-ms N] [--file-bytes N] [--host H] [--port N] [--linger-ms N] [--json]
// What netrr is for, in about ten seconds, with nothing but Node: see app/demo.ts.

import { Demo, checkDemo, formatSummary, DEMO_DURATION_MS } from '../app/demo.ts';
import { DEFAULT_DEMO_TRAFFIC, DEMO_MSS } from '../engine/demo-traffic.ts';

export interface DemoCommandOptions {
  durationMs?: number;
  fileBytes?: number;
  host?: string;
  port?: number;
  lingerMs?: number;
  json?: boolean;
}

export async function demoCommand(o: DemoCommandOptions): Promise<void> {
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
