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
import { Writable } from 'node:stream';
import { decodeCommand } from '../src/cli/cmd-decode.ts';
import { pcapInfoCommand } from '../src/cli/cmd-pcap.ts';
import { LineOutput } from '../src/cli/output.ts';
import { NetrrError } from '../src/errors.ts';
import { SHARED_DIR, netrr } from './helpers/run.ts';

const CORPUS = join(SHARED_DIR, 'corpus/tcpdump-captures');
const files = readdirSync(CORPUS).filter((f) => /\.(pcap|pcapng)$/.test(f)).sort();

/** Every this-many-th file also goes through the CLI as a process (exit status, stderr, no hang); all go through the commands in-process. */
const CLI_SAMPLE_EVERY = 6;

test(`corpus: ${files.length} captures through netrr decode and pcap info, no crash, hang or uncoded error (every one in-process, every ${CLI_SAMPLE_EVERY}th as a process)`, async () => {
  assert.ok(files.length >= 400, `expected the 406-file corpus at ${CORPUS}, found ${files.length}`);
  const failures: string[] = [];
  const sink = new Writable({ write: (_c, _e, done) => done() });
  for (const f of files) {
    for (const run of [() => decodeCommand(join(CORPUS, f), { json: true }, new LineOutput(sink)), () => pcapInfoCommand(join(CORPUS, f), { json: true }, new LineOutput(sink))]) {
      try {
        await run();
      } catch (e) {
        // The corpus files all end on a record boundary: a coded error here would be news too.
        failures.push(`${f}: ${e instanceof NetrrError ? `${e.code} ${e.message}` : `uncoded ${String(e)}`}`);
      }
    }
  }
  assert.deepEqual(failures, []);
  const cliFailures: string[] = [];
  let next = 0;
  const sample = files.filter((_, i) => i % CLI_SAMPLE_EVERY === 0);
  const worker = async (): Promise<void> => {
    while (next < sample.length) {
      const f = sample[next++]!;
      for (const args of [['decode', '--json'], ['pcap', 'info']]) {
        const r = await netrr([...args, join(CORPUS, f)], 30_000);
        const what = `${args.join(' ')} ${f}`;
        if (r.signal !== null) cliFailures.push(`${what}: killed by ${r.signal} (hang or crash)`);
        else if (r.code !== 0) cliFailures.push(`${what}: exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 300))}`);
      }
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(cliFailures, []);
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
