// File I/O for captures: stream a pcap/pcapng file through CaptureStream
// (reading straight into its window).

import { open, type FileHandle } from 'node:fs/promises';
import { fromSystemError } from '../errors.ts';
import type { CaptureRecord } from '../pcap/capture-record.ts';
import { CaptureStream } from '../pcap/capture-stream.ts';

/** Read size per syscall. */
export const CAPTURE_READ_BYTES = 1024 * 1024;

export interface ReadProgress {
  readonly bytesRead: number;
  readonly fileBytes: number;
}

/**
 * Reads a whole capture, calling onRecord per packet (the record and its data
 * are reused: copy to keep). Resolves with the stream (interfaces, format)
 * or rejects with a coded error; records before a bad one are delivered.
 * afterChunk runs after each read's records, so output can be drained there.
 */
export async function readCaptureFile(
  path: string,
  onRecord: (r: CaptureRecord) => void,
  options: { afterChunk?: (p: ReadProgress) => Promise<void> | void; stream?: CaptureStream } = {},
): Promise<CaptureStream> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, path);
  }
  const stream = options.stream ?? new CaptureStream(onRecord);
  try {
    const fileBytes = (await fh.stat()).size;
    let bytesRead = 0;
    for (;;) {
      const w = stream.writable(CAPTURE_READ_BYTES);
      const { bytesRead: n } = await fh.read(w, 0, Math.min(w.length, CAPTURE_READ_BYTES * 4), null);
      if (n === 0) break;
      bytesRead += n;
      stream.commit(n);
      // Lets a consumer write out what this chunk produced before reading more.
      if (options.afterChunk !== undefined) await options.afterChunk({ bytesRead, fileBytes });
    }
    stream.end();
    return stream;
  } catch (e) {
    throw fromSystemError(e, path);
  } finally {
    await fh.close();
  }
}

