// Every capture of the tcpdump corpus (../shared/corpus/tcpdump-captures,
// many deliberately malformed) goes through `netrr decode` and `netrr pcap
// info` without a crash, a hang or an uncoded error; cut and corrupted copies
// end with a coded error after the packets before the damage. Field-by-field
// agreement with tshark is decode-corpus-tshark.test.ts (apart: each runs some
// minutes, and a test file has ten).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SHARED_DIR, netrr } from './helpers/run.ts';

const CORPUS = join(SHARED_DIR, 'corpus/tcpdump-captures');
const files = readdirSync(CORPUS).filter((f) => /\.(pcap|pcapng)$/.test(f)).sort();

test(`corpus: ${files.length} captures through netrr decode and pcap info (CLI), no crash, hang or uncoded error`, async () => {
  assert.ok(files.length >= 400, `expected the 406-file corpus at ${CORPUS}, found ${files.length}`);
  const failures: string[] = [];
  let next = 0;
  let nonZero = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      for (const args of [['decode', '--json'], ['pcap', 'info']]) {
        const r = await netrr([...args, join(CORPUS, f)], 30_000);
        const what = `${args.join(' ')} ${f}`;
        if (r.signal !== null) failures.push(`${what}: killed by ${r.signal} (hang or crash)`);
        else if (r.code !== 0) {
          nonZero++;
          // A coded error: exit status from errors.ts and one line "netrr: … [ERR_…]".
          if (!/^netrr: .+ \[ERR_[A-Z_]+\]\n$/.test(r.stderr) || ![64, 65, 66, 74, 75, 76].includes(r.code ?? -1)) {
            failures.push(`${what}: exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 300))}`);
          }
        }
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  assert.deepEqual(failures, []);
  // The corpus files all end on a record boundary: coded exits here would be news.
  assert.equal(nonZero, 0);
});

test('corpus files cut short or with a corrupted length exit with a coded error, after the packets before the damage', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'netrr-cut-'));
  try {
    const sample = files.filter((_, i) => i % 20 === 0);
    for (const f of sample) {
      const bytes = readFileSync(join(CORPUS, f));
      if (bytes.length < 40) continue;
      const cut = join(tmp, `cut-${f}`);
      writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
      const r = await netrr(['decode', cut]);
      assert.equal(r.code, 65, `${f}: ${r.stderr}`);
      assert.match(r.stderr, /\[ERR_(PCAP_TRUNCATED|PCAPNG_BAD_BLOCK)\]\n$/, f);
      const corrupt = join(tmp, `len-${f}`);
      const bad = Buffer.from(bytes);
      // pcap: first record's captured length; pcapng: the section header's block length.
      bad.writeUInt32BE(0x7ffffff0, f.endsWith('.pcapng') ? 4 : 24 + 8);
      writeFileSync(corrupt, bad);
      const c = await netrr(['pcap', 'info', corrupt]);
      assert.equal(c.code, 65, `${f}: ${c.stderr}`);
      assert.match(c.stderr, /\[ERR_(PCAP_BAD_RECORD|PCAPNG_BAD_BLOCK)\]\n$/, f);
      const full = await netrr(['decode', join(CORPUS, f)]);
      const before = full.stdout.split('\n').filter((l) => l !== '');
      const after = r.stdout.split('\n').filter((l) => l !== '');
      assert.deepEqual(after, before.slice(0, after.length), `${f}: packets before the cut are printed`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
