// Decodes a capture in-process into summaries (what `netrr decode --json` prints).

import { readCaptureFile } from '../../src/io/capture-file.ts';
import { formatEpoch } from '../../src/pcap/capture-record.ts';
import { type PacketSummary, summarize } from '../../src/packet/packet-summary.ts';
import { PacketView } from '../../src/packet/packet-view.ts';

export async function decodeFile(file: string): Promise<{ summaries: PacketSummary[]; error: unknown }> {
  const view = new PacketView();
  const summaries: PacketSummary[] = [];
  let error: unknown = null;
  try {
    await readCaptureFile(file, (r) => {
      view.decode(r.data, r.linkType);
      summaries.push(summarize(view, r.index + 1, formatEpoch(r.tsSec, r.tsNsec), r.originalLength));
    });
  } catch (e) {
    error = e;
  }
  return { summaries, error };
}
