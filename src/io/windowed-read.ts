// The read loop shared by the log readers: read a file into a bounded window,
// let a parser consume whole items in place, move only the unparsed tail, and
// grow the window only for one item larger than it.

import { type FileHandle, open } from 'node:fs/promises';
import { fromSystemError } from '../errors.ts';

export const WINDOW_READ_BYTES = 1024 * 1024;

export interface WindowedParser {
  /** Consumes whole items from win[start, end); returns where it stopped. */
  parse(win: Uint8Array, start: number, end: number): number;
  /** Bytes the next item needs in one piece. */
  readonly needBytes: number;
  /** True when the parser wants no more input (e.g. an END event). */
  readonly done?: boolean;
}

/** Reads fh from `pos` to the end through `parser`; returns the unconsumed byte count at the end. */
export async function readWindowed(fh: FileHandle, pos: number, parser: WindowedParser, afterChunk?: (readTo: number) => Promise<void> | void): Promise<number> {
  let win = new Uint8Array(WINDOW_READ_BYTES * 2);
  let start = 0;
  let end = 0;
  for (;;) {
    const need = Math.max(parser.needBytes, WINDOW_READ_BYTES);
    if (win.length - end < need) {
      const live = end - start;
      const next = live + need > win.length ? new Uint8Array(live + need) : win;
      if (next === win) win.copyWithin(0, start, end);
      else next.set(win.subarray(start, end));
      win = next;
      start = 0;
      end = live;
    }
    const { bytesRead: n } = await fh.read(win, end, Math.min(win.length - end, WINDOW_READ_BYTES), pos);
    if (n === 0) break;
    pos += n;
    end += n;
    start = parser.parse(win, start, end);
    if (start === end) start = end = 0;
    if (afterChunk !== undefined) await afterChunk(pos);
    if (parser.done === true) break;
  }
  return end - start;
}

/**
 * Opens a log for reading (a coded error if it cannot be) and reads its first
 * `headBytes` bytes; `head` is shorter for a shorter file. The caller closes `fh`.
 */
export async function openWithHead(path: string, headBytes: number): Promise<{ fh: FileHandle; fileBytes: number; head: Uint8Array }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, path);
  }
  try {
    const fileBytes = (await fh.stat()).size;
    const head = new Uint8Array(headBytes);
    const { bytesRead } = await fh.read(head, 0, headBytes, 0);
    return { fh, fileBytes, head: head.subarray(0, bytesRead) };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
