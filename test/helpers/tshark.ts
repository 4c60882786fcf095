// Runs tshark for field-level comparison with `netrr decode`.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { PacketSummary } from '../../src/packet/packet-summary.ts';

const run = promisify(execFile);

export const TSHARK_FIELDS = [
  'frame.number',
  'frame.time_epoch',
  'frame.len',
  'frame.cap_len',
  'eth.src',
  'eth.dst',
  'eth.type',
  'vlan.id',
  'ieee8021ad.id',
  'vlan.etype',
  'ip.src',
  'ip.dst',
  'ip.proto',
  'ip.ttl',
  'ip.id',
  'ip.flags.df',
  'ip.flags.mf',
  'ip.frag_offset',
  'ipv6.src',
  'ipv6.dst',
  'ipv6.hlim',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.seq_raw',
  'tcp.ack_raw',
  'tcp.flags',
  'tcp.window_size_value',
  'udp.srcport',
  'udp.dstport',
  'icmp.type',
  'icmp.code',
  'icmpv6.type',
  'icmpv6.code',
  'arp.opcode',
] as const;

export type TsharkRow = Record<(typeof TSHARK_FIELDS)[number], string[]>;

/** Every packet tshark reads from `file`, field values split per occurrence. */
export async function tsharkFields(file: string): Promise<{ rows: TsharkRow[]; stderr: string; failed: boolean }> {
  const args = ['-r', file, '-n', '-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,'];
  for (const f of TSHARK_FIELDS) args.push('-e', f);
  let stdout = '';
  let stderr = '';
  let failed = false;
  try {
    ({ stdout, stderr } = await run('tshark', args, { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }));
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    stdout = err.stdout ?? '';
    stderr = err.stderr ?? '';
    failed = true;
  }
  const rows: TsharkRow[] = [];
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const cols = line.split('\t');
    const row = {} as TsharkRow;
    TSHARK_FIELDS.forEach((f, i) => {
      const v = cols[i] ?? '';
      row[f] = v === '' ? [] : v.split(',');
    });
    rows.push(row);
  }
  return { rows, stderr, failed };
}

function first(row: TsharkRow, f: (typeof TSHARK_FIELDS)[number]): string | undefined {
  return row[f][0];
}

function normEpoch(t: string): string {
  const [s, frac = ''] = t.split('.');
  return `${s}.${frac.padEnd(9, '0').slice(0, 9)}`;
}

/**
 * Field-by-field differences between our summary and tshark's row, for the
 * fields we produced. An empty list means agreement.
 */
export function compareWithTshark(s: PacketSummary, row: TsharkRow): string[] {
  const diffs: string[] = [];
  const eq = (name: string, ours: unknown, theirs: string | undefined): void => {
    if (ours === undefined) return;
    if (theirs === undefined) {
      // Where netrr names what is wrong with a header, tshark stops adding
      // that header's fields: both agree that it is bogus.
      if (s.malformed === null) diffs.push(`${name}: netrr=${String(ours)} tshark=(absent)`);
      return;
    }
    if (String(ours) !== theirs) diffs.push(`${name}: netrr=${String(ours)} tshark=${theirs}`);
  };
  eq('frame.time_epoch', s.time, normEpoch(first(row, 'frame.time_epoch') ?? ''));
  eq('frame.len', s.len, first(row, 'frame.len'));
  eq('frame.cap_len', s.caplen, first(row, 'frame.cap_len'));
  eq('eth.src', s.ethSrc, first(row, 'eth.src'));
  eq('eth.dst', s.ethDst, first(row, 'eth.dst'));
  if (s.vlans !== undefined) {
    const theirs = [...row['ieee8021ad.id'], ...row['vlan.id']].map(Number).sort((a, b) => a - b);
    const ours = [...s.vlans].sort((a, b) => a - b);
    if (theirs.length > 0 && theirs.slice(0, ours.length).join() !== ours.join() && theirs.join() !== ours.join()) {
      diffs.push(`vlan ids: netrr=${ours.join()} tshark=${theirs.join()}`);
    }
    const etypes = [...row['vlan.etype']];
    if (s.ethType !== undefined && etypes.length > 0 && !etypes.includes(s.ethType)) {
      diffs.push(`ethertype: netrr=${s.ethType} tshark vlan etypes=${etypes.join()}`);
    }
  } else if (s.ethSrc !== undefined) {
    eq('eth.type', s.ethType, first(row, 'eth.type'));
  }
  if (s.ipVersion === 4) {
    eq('ip.src', s.ipSrc, first(row, 'ip.src'));
    eq('ip.dst', s.ipDst, first(row, 'ip.dst'));
    eq('ip.proto', s.ipProto, first(row, 'ip.proto'));
    eq('ip.ttl', s.ipTtl, first(row, 'ip.ttl'));
    const id = first(row, 'ip.id');
    eq('ip.id', s.ipId, id === undefined ? undefined : String(Number(id)));
    eq('ip.flags.df', s.ipDf === undefined ? undefined : s.ipDf ? '1' : '0', first(row, 'ip.flags.df'));
    eq('ip.flags.mf', s.ipMf === undefined ? undefined : s.ipMf ? '1' : '0', first(row, 'ip.flags.mf'));
    // tshark 4.0 prints the fragment offset in 8-byte units; netrr in bytes.
    const fo = first(row, 'ip.frag_offset');
    eq('ip.frag_offset', s.ipFragOffset, fo === undefined ? undefined : String(Number(fo) * 8));
  } else if (s.ipVersion === 6) {
    eq('ipv6.src', s.ipSrc, first(row, 'ipv6.src'));
    eq('ipv6.dst', s.ipDst, first(row, 'ipv6.dst'));
    eq('ipv6.hlim', s.ipTtl, first(row, 'ipv6.hlim'));
  }
  if (s.tcpSeq !== undefined) {
    eq('tcp.srcport', s.srcPort, first(row, 'tcp.srcport'));
    eq('tcp.dstport', s.dstPort, first(row, 'tcp.dstport'));
    eq('tcp.seq_raw', s.tcpSeq, first(row, 'tcp.seq_raw'));
    eq('tcp.ack_raw', s.tcpAck, first(row, 'tcp.ack_raw'));
    const fl = first(row, 'tcp.flags');
    eq('tcp.flags', s.tcpFlags, fl === undefined ? undefined : `0x${Number(fl).toString(16).padStart(4, '0')}`);
    eq('tcp.window_size_value', s.tcpWindow, first(row, 'tcp.window_size_value'));
  } else if (s.ipProto === 17 && s.srcPort !== undefined) {
    eq('udp.srcport', s.srcPort, first(row, 'udp.srcport'));
    eq('udp.dstport', s.dstPort, first(row, 'udp.dstport'));
  }
  if (s.icmpType !== undefined) {
    const v6 = s.ipProto === 58;
    eq(v6 ? 'icmpv6.type' : 'icmp.type', s.icmpType, first(row, v6 ? 'icmpv6.type' : 'icmp.type'));
    eq(v6 ? 'icmpv6.code' : 'icmp.code', s.icmpCode, first(row, v6 ? 'icmpv6.code' : 'icmp.code'));
  }
  if (s.arpOp !== undefined) eq('arp.opcode', s.arpOp, first(row, 'arp.opcode'));
  return diffs;
}
