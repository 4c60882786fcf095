// Every capture of the tcpdump corpus (../shared/corpus/tcpdump-captures,
// many deliberately malformed) goes through `netrr decode` and `netrr pcap
// info` without a crash, a hang or an uncoded error, and where netrr and
// tshark both decode a packet they agree field by field.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NetrrError } from '../src/errors.ts';
import { decodeFile } from './helpers/decode-file.ts';
import { SHARED_DIR, netrr } from './helpers/run.ts';
import { compareWithTshark, tsharkFields } from './helpers/tshark.ts';

const CORPUS = join(SHARED_DIR, 'corpus/tcpdump-captures');
const files = readdirSync(CORPUS).filter((f) => /\.(pcap|pcapng)$/.test(f)).sort();

/**
 * Where tshark 4.0 and netrr legitimately differ, file by file, and why.
 * Each entry names the fields it excuses; any other difference fails.
 */
const KNOWN_DIFFERENCES: Record<string, { fields: string[]; why: string }> = {
  'DTP.pcap': { fields: ['eth.dst', 'eth.src'], why: 'Cisco ISL frames: tshark dissects the ISL header and reports the inner Ethernet addresses; netrr decodes the outer 802.3 header' },
  'atm-heapoverflow.pcap': { fields: ['frame.len', 'frame.cap_len'], why: 'SunATM link type: tshark subtracts its 4-byte pseudo-header from the lengths; netrr reports the record lengths' },
  'atm-oam-heapoverflow.pcap': { fields: ['frame.len', 'frame.cap_len'], why: 'as atm-heapoverflow.pcap' },
  'bigtcp-ipv6.pcap': { fields: ['tcp.'], why: 'IPv6 jumbogram (Linux BIG TCP, payload length 0 + hop-by-hop jumbo option): tshark 4.0 stops at IPv6, netrr decodes the TCP header' },
  'bigtcp-ipv6-geneve-ipv4.pcap': { fields: ['udp.'], why: 'as bigtcp-ipv6.pcap' },
  'bigtcp-ipv6-geneve-ipv6.pcap': { fields: ['udp.'], why: 'as bigtcp-ipv6.pcap' },
  'timestamp_invalid_nano.pcap': { fields: ['frame.time_epoch'], why: 'nanosecond fraction ≥ 10^9: netrr carries it into the seconds, tshark prints it unnormalised (or negative)' },
};

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

test('corpus: netrr decode agrees with tshark -T fields wherever both decode a packet', async () => {
  const diffs: string[] = [];
  let compared = 0;
  let fieldsCompared = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      const path = join(CORPUS, f);
      const [ours, theirs] = await Promise.all([decodeFile(path), tsharkFields(path)]);
      if (ours.error !== null) assert.ok(ours.error instanceof NetrrError, `${f}: ${String(ours.error)}`);
      const known = KNOWN_DIFFERENCES[f];
      for (const s of ours.summaries) {
        const row = theirs.rows[s.frame - 1];
        if (row === undefined) continue; // tshark could not read this far (or this link type)
        compared++;
        fieldsCompared += Object.keys(s).length;
        for (const d of compareWithTshark(s, row)) {
          if (known !== undefined && known.fields.some((k) => d.startsWith(k))) continue;
          diffs.push(`${f}#${s.frame} ${d}`);
        }
      }
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(diffs, []);
  assert.ok(compared > 3000, `only ${compared} packets compared`);
  assert.ok(fieldsCompared > 30000);
});
