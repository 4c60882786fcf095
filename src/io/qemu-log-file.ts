// Streams a QEMU replay log file through QemuLogParser with a bounded window.

import { NetrrError } from '../errors.ts';
import { QEMU_LOG_HEADER_BYTES, QemuLogParser, type QemuEvent, parseQemuLogHeader } from '../codec/qemu-replay-log.ts';
import { openWithHead, readWindowed } from './windowed-read.ts';

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
  const { fh, fileBytes, head } = await openWithHead(path, QEMU_LOG_HEADER_BYTES);
  try {
    const header = parseQemuLogHeader(head, options.assumeVersion);
    // Bytes a short file lacks read as 0, as they did from the zeroed header buffer.
    const headerMissing = (head[0] ?? 0) === 0 && (head[1] ?? 0) === 0 && (head[2] ?? 0) === 0 && (head[3] ?? 0) === 0;
    const parser = new QemuLogParser(header.version);
    const left = await readWindowed(
      fh,
      QEMU_LOG_HEADER_BYTES,
      {
        parse: (w, a, b) => parser.parse(w, a, b, onEvent),
        get needBytes() {
          return parser.needBytes;
        },
        get done() {
          return parser.ended;
        },
      },
      options.afterChunk === undefined ? undefined : () => options.afterChunk!(),
    );
    if (!parser.ended && left > 0) {
      throw new NetrrError('ERR_QEMU_LOG_TRUNCATED', `log ends inside an event at offset ${parser.offset} (${left} bytes left over)`, { offset: parser.offset });
    }
    return { version: header.version, headerMissing, fileBytes, events: parser.events, icount: parser.icount, ended: parser.ended };
  } finally {
    await fh.close();
  }
}
