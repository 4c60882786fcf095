// netrr qemu-log info|events|export: QEMU's own record/replay logs.

import { open } from 'node:fs/promises';
import { NetrrError, fromSystemError } from '../errors.ts';
import { EVENT_NAMES, EV_ASYNC_NET, EV_INSTRUCTION } from '../codec/qemu-replay-log.ts';
import { scanQemuLog } from '../io/qemu-log-file.ts';
import { PcapngWriter } from '../pcap/pcapng-writer.ts';
import { LineOutput } from './output.ts';

export function parseVersionOption(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new NetrrError('ERR_BAD_OPTION', `--assume-version must be a number such as 0xe0200c, not "${v}"`);
  return n;
}

export async function qemuLogInfoCommand(file: string, o: { json?: boolean; assumeVersion?: string }, out = new LineOutput()): Promise<void> {
  const counts = new Map<string, number>();
  const net = new Map<number, { frames: number; bytes: number }>();
  const opts = o.assumeVersion !== undefined ? { assumeVersion: parseVersionOption(o.assumeVersion)! } : {};
  const scan = await scanQemuLog(
    file,
    (e) => {
      const name = EVENT_NAMES[e.id] ?? `EVENT_${e.id}`;
      counts.set(name, (counts.get(name) ?? 0) + 1);
      if (e.id === EV_ASYNC_NET) {
        const n = net.get(e.index) ?? { frames: 0, bytes: 0 };
        n.frames++;
        n.bytes += e.data.length;
        net.set(e.index, n);
      }
    },
    opts,
  );
  const info = {
    file,
    version: `0x${scan.version.toString(16)}`,
    headerMissing: scan.headerMissing,
    bytes: scan.fileBytes,
    events: scan.events,
    instructions: scan.icount,
    ended: scan.ended,
    counts: Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1])),
    network: Object.fromEntries([...net.entries()].map(([id, n]) => [`filter-replay #${id}`, n])),
  };
  if (o.json) out.line(JSON.stringify(info));
  else {
    out.line(`file          ${file}`);
    out.line(`version       ${info.version}${scan.headerMissing ? ' (assumed: header missing, recording was killed)' : ''}`);
    out.line(`events        ${scan.events} (${scan.ended ? 'END seen' : 'no END event: the log stops early'})`);
    out.line(`instructions  ${scan.icount}`);
    for (const [k, n] of Object.entries(info.counts)) out.line(`  ${k.padEnd(28)} ${n}`);
    for (const [k, n] of Object.entries(info.network)) out.line(`network       ${k}: ${n.frames} frames, ${n.bytes} bytes`);
  }
  await out.end();
}

export async function qemuLogEventsCommand(file: string, o: { json?: boolean; assumeVersion?: string; instructions?: boolean }, out = new LineOutput()): Promise<void> {
  const opts = { ...(o.assumeVersion !== undefined ? { assumeVersion: parseVersionOption(o.assumeVersion)! } : {}), afterChunk: () => out.settle() };
  await scanQemuLog(
    file,
    (e) => {
      if (out.closed || (e.id === EV_INSTRUCTION && !o.instructions)) return;
      const rec: Record<string, unknown> = { offset: e.offset, icount: e.icount, event: EVENT_NAMES[e.id] ?? e.id };
      if (e.id === EV_ASYNC_NET) Object.assign(rec, { filter: e.index, flags: e.flags, bytes: e.data.length });
      // A 64-bit value past 2^53 (CLOCK_HOST) is printed exactly, as a string in JSON.
      else if (e.wide > BigInt(Number.MAX_SAFE_INTEGER)) rec.value = e.wide.toString();
      else if (e.id === EV_INSTRUCTION || e.value !== 0) rec.value = e.value;
      if (e.data.length > 0 && e.id !== EV_ASYNC_NET) rec.bytes = e.data.length;
      out.line(o.json ? JSON.stringify(rec) : Object.entries(rec).map(([k, v]) => `${k}=${String(v)}`).join(' '));
    },
    opts,
  );
  await out.end();
}

/** Network events → pcapng, one interface per filter-replay object, the instruction count in a custom option. */
export async function qemuLogExportCommand(file: string, output: string, o: { assumeVersion?: string }): Promise<{ frames: number }> {
  let fh;
  try {
    fh = await open(output, 'w');
  } catch (e) {
    throw fromSystemError(e, output);
  }
  const w = new PcapngWriter({ userAppl: 'netrr qemu-log export', comment: `QEMU replay log ${file}: frames delivered toward the guest by filter-replay` });
  const ifaces = new Map<number, number>();
  let frames = 0;
  try {
    await scanQemuLog(
      file,
      (e) => {
        if (e.id !== EV_ASYNC_NET) return;
        let id = ifaces.get(e.index);
        if (id === undefined) {
          id = w.addInterface({ linkType: 1, name: `filter-replay-${e.index}`, description: `frames recorded by filter-replay object #${e.index} (creation order)` });
          ifaces.set(e.index, id);
        }
        // A replay log has no wall-clock time for packets; the position is the instruction count.
        w.writePacket(id, 0, 0, e.data, e.data.length, { flags: 1, custom: [`icount=${e.icount}`, `net-flags=${e.flags}`] });
        frames++;
      },
      {
        ...(o.assumeVersion !== undefined ? { assumeVersion: parseVersionOption(o.assumeVersion)! } : {}),
        afterChunk: async () => {
          const c = w.out.take();
          if (c !== null) await fh.write(c);
        },
      },
    );
    const rest = w.out.take();
    if (rest !== null) await fh.write(rest);
  } finally {
    await fh.close();
  }
  return { frames };
}
