// Issue 8 item 6: no pcapng file may exhaust the heap through its section and
// interface blocks. The CLI runs with a 96 MB heap; before the bounds, 1 M
// IDBs took 729 MB and 1 M SHBs 612 MB.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CaptureStream } from '../src/pcap/capture-stream.ts';
import { PCAPNG_MAX_LISTED, PCAPNG_MAX_SECTION_INTERFACES } from '../src/pcap/pcapng-format.ts';
import { NETRR_BIN, run, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-pcapng-bounds-');
after(() => tmp.cleanup());

const SHB = Buffer.from('0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000', 'hex');
const IDB = Buffer.from('01000000140000000100000000000400' + '14000000', 'hex');

/** An EPB of a 60-byte frame on interface `ifId`. */
function epb(ifId: number): Buffer {
  const b = Buffer.alloc(32 + 60);
  b.writeUInt32LE(6, 0);
  b.writeUInt32LE(b.length, 4);
  b.writeUInt32LE(ifId, 8);
  b.writeUInt32LE(60, 20);
  b.writeUInt32LE(60, 24);
  b.fill(0xab, 28, 88);
  b.writeUInt32LE(b.length, 88);
  return b;
}

function repeat(block: Buffer, n: number): Buffer {
  const out = Buffer.allocUnsafe(block.length * n);
  for (let i = 0; i < n; i++) block.copy(out, i * block.length);
  return out;
}

async function infoWithSmallHeap(path: string): Promise<Record<string, unknown>> {
  const r = await run(process.execPath, ['--max-old-space-size=96', NETRR_BIN, 'pcap', 'info', '--json', path], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal ?? ''}: ${r.stderr.slice(0, 500)}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('1 M interface blocks in one section: pcap info stays within a 96 MB heap; the overflow is counted', async () => {
  const path = join(tmp.path, 'idbs.pcapng');
  writeFileSync(path, Buffer.concat([SHB, repeat(IDB, 1_000_000), epb(7), epb(PCAPNG_MAX_SECTION_INTERFACES - 1)]));
  const info = await infoWithSmallHeap(path);
  assert.equal(info.packets, 2);
  assert.equal((info.interfaces as unknown[]).length, PCAPNG_MAX_LISTED);
  assert.equal(info.interfacesNotListed, 1_000_000 - PCAPNG_MAX_LISTED);
  assert.equal(info.interfacesOverLimit, 1_000_000 - PCAPNG_MAX_SECTION_INTERFACES);
});

test('1 M section headers, each with an interface and a packet: bounded, every packet read', async () => {
  const path = join(tmp.path, 'shbs.pcapng');
  writeFileSync(path, repeat(Buffer.concat([SHB, IDB, epb(0)]), 1_000_000));
  const info = await infoWithSmallHeap(path);
  assert.equal(info.packets, 1_000_000);
  assert.equal((info.sections as unknown[]).length, PCAPNG_MAX_LISTED);
  assert.equal(info.sectionsNotListed, 1_000_000 - PCAPNG_MAX_LISTED);
});

test('a packet naming an interface past the per-section limit is a coded error, not a crash', () => {
  const stream = new CaptureStream(() => {});
  stream.push(Buffer.concat([SHB, repeat(IDB, PCAPNG_MAX_SECTION_INTERFACES + 2), epb(1)]));
  assert.throws(() => stream.push(epb(PCAPNG_MAX_SECTION_INTERFACES + 1)), (e: unknown) => (e as { code?: string }).code === 'ERR_PCAPNG_BAD_INTERFACE' && /beyond the 65536 per section/.test((e as Error).message));
  assert.equal(stream.packets, 1);
  assert.equal(stream.pcapng!.interfacesOverLimit, 2);
});
