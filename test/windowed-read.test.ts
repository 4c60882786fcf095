import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { WINDOW_READ_BYTES, makeRoom, readWindowed } from '../src/io/windowed-read.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-window-');
after(() => tmp.cleanup());

/** Bytes makeRoom moved (grown into a new window or compacted) while one item of `itemBytes` arrives a read at a time. */
function bytesMovedForOneItem(itemBytes: number): { moved: number; windows: number } {
  const w = { win: new Uint8Array(WINDOW_READ_BYTES * 2), start: 0, end: 0 };
  let moved = 0;
  let windows = 1;
  while (w.end - w.start < itemBytes) {
    const before = w.win;
    const start = w.start;
    makeRoom(w, itemBytes);
    if (w.win !== before) windows++;
    if (w.win !== before || start !== w.start) moved += w.end - w.start;
    // A read fills what the item still lacks, as readWindowed asks.
    w.end += Math.min(w.win.length - w.end, Math.max(WINDOW_READ_BYTES, itemBytes - (w.end - w.start)));
  }
  return { moved, windows };
}

test('one large item is read with linear copying, not a copy of the window per read (issue 8 item 7)', () => {
  for (const mib of [16, 64, 128]) {
    const { moved, windows } = bytesMovedForOneItem(mib * 1024 * 1024);
    // The old loop copied the whole live window on every 1 MiB read: about mib²/2 MiB.
    assert.ok(moved <= 2 * mib * 1024 * 1024, `${mib} MiB item moved ${moved} bytes`);
    assert.ok(windows <= 3, `${mib} MiB item needed ${windows} windows`);
  }
});

test('property: makeRoom keeps the live bytes and leaves room for the item and a read', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4 * WINDOW_READ_BYTES }), fc.integer({ min: 0, max: 3 * WINDOW_READ_BYTES }), fc.integer({ min: 0, max: 8 * WINDOW_READ_BYTES }), (a, b, want) => {
      const win = new Uint8Array(Math.max(2 * WINDOW_READ_BYTES, a + b));
      for (let i = a; i < a + b; i++) win[i] = i * 7;
      const w = { win, start: a, end: a + b };
      makeRoom(w, want);
      assert.equal(w.end - w.start, b);
      for (let i = 0; i < b; i++) assert.equal(w.win[w.start + i], ((a + i) * 7) & 0xff);
      assert.ok(w.win.length - w.start >= Math.max(want, b + WINDOW_READ_BYTES));
    }),
    { numRuns: 50 },
  );
});

test('readWindowed hands a parser every item of a file, a 40 MiB item among small ones', async () => {
  const sizes = [10, 40 * 1024 * 1024, 3, WINDOW_READ_BYTES + 5, 1];
  const parts = sizes.map((n, i) => {
    const b = Buffer.alloc(4 + n, i + 1);
    b.writeUInt32BE(n, 0);
    return b;
  });
  const path = join(tmp.path, 'items');
  writeFileSync(path, Buffer.concat(parts));
  const got: number[] = [];
  let needBytes = 4;
  const parser = {
    get needBytes() {
      return needBytes;
    },
    parse(win: Uint8Array, start: number, end: number): number {
      let pos = start;
      while (end - pos >= 4) {
        const n = Buffer.from(win.buffer, win.byteOffset + pos, 4).readUInt32BE(0);
        if (end - pos < 4 + n) {
          needBytes = 4 + n;
          return pos;
        }
        assert.ok(win.subarray(pos + 4, pos + 4 + n).every((x) => x === got.length + 1));
        got.push(n);
        pos += 4 + n;
      }
      needBytes = 4;
      return pos;
    },
  };
  const fh = await open(path, 'r');
  try {
    assert.equal(await readWindowed(fh, 0, parser), 0);
  } finally {
    await fh.close();
  }
  assert.deepEqual(got, sizes);
});
