// The read loop shared by the log readers: read a file into a bounded window,
// let a parser consume whole items in place, move only the unparsed tail, and
// grow the window (geometrically) only for one item larger than it.

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

/**
 * Room for the next read: the window keeps its live bytes [start, end) and
 * gets at least `want` bytes of capacity from `start` plus one read's worth of
 * free tail. It grows geometrically (so one item of N bytes costs O(N) copies,
 * not O(N²): issue 8 measured 30 s for a 16 M-sample event when it grew by one
 * read at a time) and compacts only when the live part is at most half of it.
 */
export function makeRoom(w: { win: Uint8Array; start: number; end: number }, want: number): void {
  const live = w.end - w.start;
  const need = Math.max(want, live + WINDOW_READ_BYTES);
  if (w.win.length - w.start >= need) return; // need ≥ live + one read, so the tail has room too
  if (need <= w.win.length && live * 2 <= w.win.length) {
    w.win.copyWithin(0, w.start, w.end);
  } else {
    const next = new Uint8Array(Math.max(need, w.win.length * 2));
    next.set(w.win.subarray(w.start, w.end));
    w.win = next;
  }
  w.start = 0;
  w.end = live;
}

/** Reads fh from `pos` to the end through `parser`; returns the unconsumed byte count at the end. */
export async function readWindowed(fh: FileHandle, pos: number, parser: WindowedParser, afterChunk?: (readTo: number) => Promise<void> | void): Promise<number> {
  const w = { win: new Uint8Array(WINDOW_READ_BYTES * 2), start: 0, end: 0 };
  for (;;) {
    makeRoom(w, parser.needBytes);
    // One read fills what the pending item still lacks (at least one read's worth).
    const want = Math.max(WINDOW_READ_BYTES, parser.needBytes - (w.end - w.start));
    const { bytesRead: n } = await fh.read(w.win, w.end, Math.min(w.win.length - w.end, want), pos);
    if (n === 0) break;
    pos += n;
    w.end += n;
    w.start = parser.parse(w.win, w.start, w.end);
    if (w.start === w.end) w.start = w.end = 0;
    if (afterChunk !== undefined) await afterChunk(pos);
    if (parser.done === true) break;
  }
  return w.end - w.start;
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
