// Where netrr and tshark both decode a packet of the tcpdump corpus, they
// agree field by field (the CLI's behaviour on the same files is
// decode-corpus.test.ts).

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NetrrError } from '../src/errors.ts';
import { decodeFile } from './helpers/decode-file.ts';
import { SHARED_DIR } from './helpers/run.ts';
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
