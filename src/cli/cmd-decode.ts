// netrr decode FILE [--json] [--summary]: one line or JSON object per packet.

import { fileURLToPath } from 'node:url';
import { readCaptureFile } from '../io/capture-file.ts';
import { formatEpoch } from '../pcap/capture-record.ts';
import { PacketView } from '../packet/packet-view.ts';
import { summarize, summaryLine } from '../packet/packet-summary.ts';
import { LineOutput } from './output.ts';

/** The capture `netrr decode` reads when no file is named. */
export const DEFAULT_CAPTURE = fileURLToPath(new URL('../../../fixtures/sample.pcapng', import.meta.url));

export interface DecodeOptions {
  json?: boolean;
  summary?: boolean;
  vnetHdr?: number;
}

export async function decodeCommand(file: string | undefined, opts: DecodeOptions, out = new LineOutput()): Promise<void> {
  const path = file ?? DEFAULT_CAPTURE;
  const view = new PacketView();
  const vnet = opts.vnetHdr ?? 0;
  const perProto = new Map<string, number>();
  let packets = 0;
  let bytes = 0;
  let malformed = 0;
  let first = '';
  let last = '';
  let failure: unknown = null;
  try {
    await readCaptureFile(path, (r) => {
      view.decode(r.data, r.linkType, vnet);
      const time = formatEpoch(r.tsSec, r.tsNsec);
      packets++;
      bytes += r.originalLength;
      if (view.malformed !== null) malformed++;
      if (opts.summary) {
        if (first === '') first = time;
        last = time;
        const key = protoName(view);
        perProto.set(key, (perProto.get(key) ?? 0) + 1);
        return;
      }
      if (out.closed) return;
      const s = summarize(view, r.index + 1, time, r.originalLength);
      out.line(opts.json ? JSON.stringify(s) : summaryLine(s, view));
    });
  } catch (e) {
    failure = e;
  }
  if (opts.summary) {
    out.line(`file      ${path}`);
    out.line(`packets   ${packets} (${bytes} bytes on the wire), ${malformed} malformed`);
    if (packets > 0) out.line(`time      ${first} .. ${last}`);
    for (const [k, n] of [...perProto.entries()].sort((x, y) => y[1] - x[1])) out.line(`  ${k.padEnd(10)} ${n}`);
  }
  await out.end();
  if (failure !== null) throw failure;
}

function protoName(v: PacketView): string {
  if (v.l3 === 0x0806) return 'ARP';
  if (v.l3 === 4 || v.l3 === 6) {
    const p = v.ipProto;
    const name = p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 1 ? 'ICMP' : p === 58 ? 'ICMPv6' : `proto ${p}`;
    return `IPv${v.l3}/${name}`;
  }
  return v.etherType >= 0 ? `0x${v.etherType.toString(16).padStart(4, '0')}` : 'other';
}
