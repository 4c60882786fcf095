// Streams a QEMU replay log file through QemuLogParser with a bounded window.

import { open, type FileHandle } from 'node:fs/promises';
import { NetrrError, fromSystemError } from '../errors.ts';
import { QEMU_LOG_HEADER_BYTES, QemuLogParser, type QemuEvent, parseQemuLogHeader } from '../codec/qemu-replay-log.ts';

const READ_BYTES = 1024 * 1024;

export interface QemuLogScan {
  readonly version: number;
  /** The header held 0: a recording that was killed. */
  readonly headerMissing: boolean;
  readonly fileBytes: number;
  readonly events: number;
  readonly icount: number;
  readonly ended: boolean;
}

export async function scanQemuLog(path: string, onEvent: (e: QemuEvent) => void, options: { assumeVersion?: number; afterChunk?: () => Promise<void> } = {}): Promise<QemuLogScan> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, path);
  }
  try {
    const fileBytes = (await fh.stat()).size;
    const head = new Uint8Array(QEMU_LOG_HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, QEMU_LOG_HEADER_BYTES, 0);
    const header = parseQemuLogHeader(head.subarray(0, bytesRead), options.assumeVersion);
    const headerMissing = head[0] === 0 && head[1] === 0 && head[2] === 0 && head[3] === 0;
    const parser = new QemuLogParser(header.version);
    let win = new Uint8Array(READ_BYTES * 2);
    let start = 0;
    let end = 0;
    let pos = QEMU_LOG_HEADER_BYTES;
    for (;;) {
      const need = Math.max(parser.needBytes, READ_BYTES);
      if (win.length - end < need) {
        const live = end - start;
        const next = live + need > win.length ? new Uint8Array(live + need) : win;
        if (next === win) win.copyWithin(0, start, end);
        else next.set(win.subarray(start, end));
        win = next;
        start = 0;
        end = live;
      }
      const { bytesRead: n } = await fh.read(win, end, Math.min(win.length - end, READ_BYTES), pos);
      if (n === 0) break;
      pos += n;
      end += n;
      start = parser.parse(win, start, end, onEvent);
      if (start === end) start = end = 0;
      if (options.afterChunk !== undefined) await options.afterChunk();
      if (parser.ended) break;
    }
    if (!parser.ended && end > start) {
      throw new NetrrError('ERR_QEMU_LOG_TRUNCATED', `log ends inside an event at offset ${parser.offset} (${end - start} bytes left over)`, { offset: parser.offset });
    }
    return { version: header.version, headerMissing, fileBytes, events: parser.events, icount: parser.icount, ended: parser.ended };
  } finally {
    await fh.close();
  }
}
