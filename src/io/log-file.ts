// Reads netrr log segments: streams every record through LogParser with a
// bounded window, and reports how a torn or damaged segment ends (last good
// record, first bad offset) instead of inventing anything after it.

import { existsSync } from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import { NetrrError, isNetrrError } from '../errors.ts';
import {
  LOG_HEADER_BYTES,
  type LogFooter,
  type LogHeader,
  LogParser,
  type LogRecord,
  REC_FOOTER,
  REC_INDEX,
  decodeFooterPayload,
  decodeLogHeader,
  encodeFooterPayload,
  encodeRecordAt,
  recordBytes,
} from '../codec/netrr-log.ts';
import { segmentPath } from './log-writer.ts';
import { openWithHead, readWindowed } from './windowed-read.ts';

export interface SegmentScan {
  readonly path: string;
  readonly header: LogHeader;
  readonly fileBytes: number;
  /** Frame records read. */
  readonly frames: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstTsNs: number;
  readonly lastTsNs: number;
  readonly footer: LogFooter | null;
  /** End of the last good record; equals fileBytes for an intact segment. */
  readonly goodEnd: number;
  /** What stopped the scan early, if anything (torn tail, bad CRC, absurd length). */
  readonly damage: NetrrError | null;
}

/** All segment paths of a log: FILE, FILE.1, FILE.2 … while they exist. */
export function logSegments(base: string): string[] {
  const out: string[] = [];
  for (let i = 0; existsSync(segmentPath(base, i)); i++) out.push(segmentPath(base, i));
  return out;
}

/**
 * Scans one segment. onFrame receives frame records (reused object; copy the
 * payload to keep it). A bad header throws; damage after the header is
 * returned in `damage`, with every good record before it delivered.
 */
export async function scanSegment(path: string, onFrame: (r: LogRecord, header: LogHeader) => void = () => {}, afterChunk?: (read: number, total: number) => Promise<void> | void): Promise<SegmentScan> {
  const { fh, fileBytes, head } = await openWithHead(path, LOG_HEADER_BYTES);
  try {
    const header = decodeLogHeader(head);
    const parser = new LogParser(LOG_HEADER_BYTES);
    let frames = 0;
    let firstSeq = -1;
    let lastSeq = -1;
    let firstTs = -1;
    let lastTs = 0;
    let footer: LogFooter | null = null;
    const onRecord = (r: LogRecord): void => {
      if (r.type === REC_FOOTER) {
        footer = decodeFooterPayload(r.payload);
        return;
      }
      if (r.type === REC_INDEX) return;
      frames++;
      if (firstSeq < 0) firstSeq = r.seq;
      lastSeq = r.seq;
      if (firstTs < 0) firstTs = r.tsNs;
      lastTs = r.tsNs;
      onFrame(r, header);
    };
    let damage: NetrrError | null = null;
    try {
      const left = await readWindowed(
        fh,
        LOG_HEADER_BYTES,
        {
          parse: (w, a, b) => parser.parse(w, a, b, onRecord),
          get needBytes() {
            return parser.needBytes;
          },
        },
        afterChunk === undefined ? undefined : (readTo) => afterChunk(readTo, fileBytes),
      );
      if (left > 0) {
        damage = new NetrrError('ERR_LOG_TRUNCATED', `segment ${path} ends inside a record at offset ${parser.goodEnd} (${left} bytes of a torn record)`, { offset: parser.goodEnd });
      }
    } catch (e) {
      if (!isNetrrError(e)) throw e;
      damage = e;
    }
    return { path, header, fileBytes, frames, firstSeq, lastSeq, firstTsNs: Math.max(0, firstTs), lastTsNs: lastTs, footer, goodEnd: parser.goodEnd, damage };
  } finally {
    await fh.close();
  }
}

/**
 * Cuts a damaged segment back to its last good record and closes it with a
 * footer, so that it reads as complete. Nothing after the damage is kept.
 */
export async function repairSegment(scan: SegmentScan): Promise<void> {
  await truncate(scan.path, scan.goodEnd);
  const fh = await open(scan.path, 'r+');
  try {
    const payload = encodeFooterPayload({
      records: scan.frames,
      firstSeq: scan.frames > 0 ? scan.firstSeq : scan.header.firstSeq,
      lastSeq: Math.max(0, scan.lastSeq),
      firstTsNs: scan.firstTsNs,
      lastTsNs: scan.lastTsNs,
      indexOffset: 0,
    });
    const rec = new Uint8Array(recordBytes(payload.length));
    encodeRecordAt(rec, 0, { type: REC_FOOTER, port: 0, direction: 0, flags: 0, seq: Math.max(0, scan.lastSeq), tsNs: 0, payload });
    await fh.write(rec, 0, rec.length, scan.goodEnd);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
