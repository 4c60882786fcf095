// netrr record, and netrr log info|verify|cat|export

import { open } from 'node:fs/promises';
import { NetrrError, fromSystemError } from '../errors.ts';
import { DIR_FROM_PORT, type LogHeader, type LogRecord } from '../codec/netrr-log.ts';
import { Recorder } from '../app/recorder.ts';
import { logSegments, repairSegment, scanSegment, type SegmentScan } from '../io/log-file.ts';
import { parseSyncPolicy } from '../io/log-writer.ts';
import { formatEpoch } from '../pcap/capture-record.ts';
import { DIRECTION_INBOUND, DIRECTION_OUTBOUND } from '../pcap/capture-record.ts';
import { PcapngWriter } from '../pcap/pcapng-writer.ts';
import { LineOutput, Progress } from './output.ts';
import { runService } from './service.ts';

export const PORT_NAMES = ['guest', 'upstream'];

function segmentsOf(file: string): string[] {
  const segs = logSegments(file);
  if (segs.length === 0) throw new NetrrError('ERR_FILE_NOT_FOUND', `${file}: no such file`);
  return segs;
}

/** Absolute time of a record: segment creation + record offset. */
function recordTime(h: LogHeader, tsNs: number, out: { sec: number; nsec: number }): void {
  const ns = Number(h.createdNs % 1_000_000_000n) + tsNs;
  const sec = Math.floor(ns / 1e9);
  out.sec = Number(h.createdNs / 1_000_000_000n) + sec;
  out.nsec = Math.round(ns - sec * 1e9);
  if (out.nsec >= 1e9) {
    out.sec++;
    out.nsec -= 1e9;
  }
}

export interface RecordCliOptions {
  guest: string;
  upstream: string;
  log: string;
  sync?: string;
  segmentBytes?: number;
  order?: string;
  control?: string;
}

/** The recorder the options describe (validated; nothing opens yet). */
export function recordApp(o: RecordCliOptions): Recorder {
  if (o.order !== undefined && o.order !== 'log-first' && o.order !== 'forward-first') throw new NetrrError('ERR_BAD_OPTION', `--order must be log-first or forward-first, not "${o.order}"`);
  return new Recorder({
    guest: o.guest,
    upstream: o.upstream,
    log: o.log,
    ...(o.order !== undefined ? { order: o.order } : {}),
    ...(o.sync !== undefined ? { sync: parseSyncPolicy(o.sync) } : {}),
    ...(o.segmentBytes !== undefined ? { segmentBytes: o.segmentBytes } : {}),
  });
}

export async function recordCommand(o: RecordCliOptions): Promise<void> {
  await runService(recordApp(o), o.control !== undefined ? { control: o.control } : {});
}

function describe(s: SegmentScan): Record<string, unknown> {
  return {
    path: s.path,
    segment: s.header.segment,
    bytes: s.fileBytes,
    frames: s.frames,
    firstSeq: s.frames > 0 ? s.firstSeq : null,
    lastSeq: s.frames > 0 ? s.lastSeq : null,
    created: formatEpoch(Number(s.header.createdNs / 1_000_000_000n), Number(s.header.createdNs % 1_000_000_000n)),
    durationSec: Number(((s.lastTsNs - s.firstTsNs) / 1e9).toFixed(6)),
    closedCleanly: s.footer !== null && s.damage === null,
    ...(s.damage !== null ? { damage: { code: s.damage.code, message: s.damage.message, lastGoodOffset: s.goodEnd } } : {}),
  };
}

export async function logInfoCommand(file: string, o: { json?: boolean }, out = new LineOutput()): Promise<void> {
  const segs = [];
  const perPort = new Map<string, number>();
  for (const p of segmentsOf(file)) {
    const progress = new Progress(`reading ${p}`);
    segs.push(
      await scanSegment(
        p,
        (r) => {
          const k = `${PORT_NAMES[r.port] ?? `port ${r.port}`} ${r.direction === DIR_FROM_PORT ? '→' : '←'}`;
          perPort.set(k, (perPort.get(k) ?? 0) + 1);
        },
        (read, total) => progress.update(read, total),
      ),
    );
    progress.done();
  }
  const info = {
    file,
    segments: segs.map(describe),
    frames: segs.reduce((n, s) => n + s.frames, 0),
    ports: Object.fromEntries(perPort),
  };
  if (o.json) out.line(JSON.stringify(info));
  else {
    out.line(`file           ${file}`);
    out.line(`frames         ${info.frames}`);
    for (const [k, n] of perPort) out.line(`  ${k.padEnd(12)} ${n}`);
    for (const s of info.segments) out.line(`segment        ${JSON.stringify(s)}`);
  }
  await out.end();
}

/** Exit status: 0 intact (or repaired), 65 with damage found and not repaired. */
/**
 * Verifies every segment; resolves with the first damage found (its own code:
 * ERR_LOG_TRUNCATED for a torn tail, ERR_LOG_BAD_RECORD for a bad length or CRC),
 * or null when the log is sound or was repaired.
 */
export async function logVerifyCommand(file: string, o: { repair?: boolean; json?: boolean }, out = new LineOutput()): Promise<NetrrError | null> {
  let firstDamage: NetrrError | null = null;
  const segs = segmentsOf(file);
  const progress = new Progress(`verifying ${file}`);
  for (const p of segs) {
    const s = await scanSegment(p, undefined, (read, total) => progress.update(read, total));
    progress.done();
    const d = describe(s);
    if (s.damage !== null) {
      firstDamage ??= s.damage;
      if (o.repair) {
        await repairSegment(s);
        d.repaired = { truncatedTo: s.goodEnd, bytesDropped: s.fileBytes - s.goodEnd };
      }
    } else if (s.footer === null) {
      // Complete records but no footer: a recording that was killed between records.
      if (o.repair) {
        await repairSegment(s);
        d.repaired = { truncatedTo: s.goodEnd, bytesDropped: 0, footerAdded: true };
      }
    }
    if (o.json) out.line(JSON.stringify(d));
    else {
      const state = s.damage !== null ? `DAMAGED at offset ${s.goodEnd}: ${s.damage.message}` : s.footer === null ? 'complete records, no footer (not closed cleanly)' : 'ok';
      out.line(`${p}: ${s.frames} frames, last good seq ${s.frames > 0 ? s.lastSeq : '-'}, ${state}${d.repaired !== undefined ? ` — repaired: ${JSON.stringify(d.repaired)}` : ''}`);
    }
  }
  await out.end();
  return firstDamage !== null && !o.repair ? firstDamage : null;
}

export async function logCatCommand(file: string, o: { json?: boolean; hex?: boolean }, out = new LineOutput()): Promise<void> {
  const t = { sec: 0, nsec: 0 };
  let damage: NetrrError | null = null;
  for (const p of segmentsOf(file)) {
    const s = await scanSegment(p, (r: LogRecord, h: LogHeader) => {
      if (out.closed) return;
      recordTime(h, r.tsNs, t);
      const rec: Record<string, unknown> = { seq: r.seq, time: formatEpoch(t.sec, t.nsec), port: PORT_NAMES[r.port] ?? r.port, direction: r.direction === DIR_FROM_PORT ? 'from' : 'to', len: r.payload.length };
      if (o.hex) rec.data = Buffer.from(r.payload).toString('hex');
      out.line(o.json ? JSON.stringify(rec) : `${rec.seq} ${rec.time} ${rec.direction} ${rec.port} ${rec.len}${o.hex ? ` ${rec.data}` : ''}`);
    }, () => out.settle());
    damage ??= s.damage;
  }
  await out.end();
  if (damage !== null) throw damage;
}

export async function logExportCommand(file: string, output: string): Promise<{ frames: number }> {
  let fh;
  try {
    fh = await open(output, 'w');
  } catch (e) {
    throw fromSystemError(e, output);
  }
  const w = new PcapngWriter({ userAppl: 'netrr log export', comment: `netrr log ${file}` });
  const ifaces = new Map<number, number>();
  const t = { sec: 0, nsec: 0 };
  let frames = 0;
  let damage: NetrrError | null = null;
  const progress = new Progress(`exporting ${file}`);
  try {
    for (const p of segmentsOf(file)) {
      const s = await scanSegment(
        p,
        (r, h) => {
          const key = r.port * 2 + r.direction;
          let id = ifaces.get(key);
          if (id === undefined) {
            const name = `${PORT_NAMES[r.port] ?? `port${r.port}`}-${r.direction === DIR_FROM_PORT ? 'in' : 'out'}`;
            id = w.addInterface({ linkType: 1, name, description: `frames ${r.direction === DIR_FROM_PORT ? 'received from' : 'sent to'} the ${PORT_NAMES[r.port] ?? `port ${r.port}`}` });
            ifaces.set(key, id);
          }
          recordTime(h, r.tsNs, t);
          // The sequence number travels as a custom option (PEN 32473) so that tshark users can find the record.
          w.writePacket(id, t.sec, t.nsec, r.payload, r.payload.length, { flags: r.direction === DIR_FROM_PORT ? DIRECTION_INBOUND : DIRECTION_OUTBOUND, custom: [`seq=${r.seq}`] });
          frames++;
        },
        async (read, total) => {
          progress.update(read, total);
          const chunk = w.out.take();
          if (chunk !== null) await fh.write(chunk);
        },
      );
      damage ??= s.damage;
    }
    const rest = w.out.take();
    if (rest !== null) await fh.write(rest);
  } finally {
    progress.done();
    await fh.close();
  }
  if (damage !== null) {
    throw new NetrrError(damage.code, `${damage.message}; exported the ${frames} frames before it (run netrr log verify --repair)`, { offset: damage.offset ?? 0 });
  }
  return { frames };
}
