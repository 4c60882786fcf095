// netrr krr-log info|entries|export: the network input of a KRR recording
// (`kernel_rr_network.log`, reference krr-network-log.md).

import { open } from 'node:fs/promises';
import { NetrrError, exitCodeFor, fromSystemError } from '../errors.ts';
import { type KrrEntry, type KrrSg } from '../codec/krr-log.ts';
import { KrrFrameAssembler, errorNames, statusNames } from '../codec/krr-frames.ts';
import { type KrrLogScan, parseLayoutOption, scanKrrLog } from '../io/krr-log-file.ts';
import { PcapngWriter } from '../pcap/pcapng-writer.ts';
import { LineOutput, Progress } from './output.ts';

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

interface Range {
  min: number;
  max: number;
}

function widen(r: Range | null, v: number): Range {
  if (r === null) return { min: v, max: v };
  if (v < r.min) r.min = v;
  if (v > r.max) r.max = v;
  return r;
}

function layoutLine(scan: KrrLogScan): string {
  if (scan.layout === null) return 'none (empty file: no frame arrived during the recording)';
  return `${scan.layout.name} (KRR since ${scan.layout.since})${scan.verdicts.length === 0 ? ', as given by --layout' : ', detected'}`;
}

export async function krrLogInfoCommand(file: string, o: { json?: boolean; layout?: string }, out = new LineOutput()): Promise<void> {
  const layout = parseLayoutOption(o.layout);
  const asm = new KrrFrameAssembler();
  let inst: Range | null = null;
  const cpus = new Set<number>();
  const visitor = {
    entry(e: KrrEntry): void {
      asm.entry(e);
      if (e.instCnt >= 0) inst = widen(inst, e.instCnt);
      if (e.cpuId >= 0) cpus.add(e.cpuId);
    },
    sg: (e: KrrEntry, sg: KrrSg, d: Uint8Array) => asm.sg(e, sg, d),
    entryEnd: (e: KrrEntry) => asm.entryEnd(e),
  };
  const scan = await scanKrrLog(file, visitor, layout === undefined ? {} : { layout });
  asm.finish();
  const p = scan.parser;
  const instR = inst as Range | null;
  const info = {
    file,
    bytes: scan.fileBytes,
    layout: scan.layout?.name ?? null,
    detection: scan.verdicts.map((v) => ({ layout: v.layout.name, fits: v.fits, reason: v.reason })),
    entries: p?.entries ?? 0,
    sgPieces: p?.sgs ?? 0,
    dataBytes: p?.dataBytes ?? 0,
    frames: asm.frames,
    frameBytes: asm.frameBytes,
    writebackOnlyEntries: asm.writebackOnlyEntries,
    instructionCount: instR === null ? null : { min: instR.min, max: instR.max },
    vcpus: [...cpus].sort((a, b) => a - b),
    descriptorRing: asm.ringLow < 0 ? null : { lowest: hex(asm.ringLow), highest: hex(asm.ringHigh), slotsSeen: asm.ringSlots.size },
    checksums: scan.layout === null ? null : scan.layout.sgChecksumValid ? { ok: p?.checksumOk ?? 0, bad: p?.checksumBad ?? 0 } : 'not computed by this layout (the field holds leftover bytes)',
    warnings: { ...asm.warnings },
    endsCleanly: scan.damage === null,
    ...(scan.damage !== null ? { damage: { code: scan.damage.code, message: scan.damage.message, offset: scan.damage.offset ?? null } } : {}),
  };
  if (o.json) out.line(JSON.stringify(info));
  else {
    out.line(`file            ${file} (${scan.fileBytes} bytes)`);
    out.line(`layout          ${layoutLine(scan)}`);
    for (const v of scan.verdicts) if (v.layout !== scan.layout) out.line(`  ruled out     ${v.layout.name}: ${v.fits ? `also ${v.reason}, but ${scan.layout?.name} ends cleanly` : v.reason}`);
    out.line(`entries         ${info.entries} (one per RX descriptor; ${asm.writebackOnlyEntries} hold only a write-back)`);
    out.line(`SG pieces       ${info.sgPieces} (${info.dataBytes} bytes)`);
    out.line(`frames          ${asm.frames} rebuilt (${asm.frameBytes} bytes)`);
    out.line(`instructions    ${instR === null ? 'not in this layout' : `${instR.min} … ${instR.max}`}`);
    out.line(`vCPUs           ${info.vcpus.length === 0 ? 'not in this layout' : info.vcpus.join(', ')}`);
    out.line(`RX ring         ${info.descriptorRing === null ? '-' : `write-backs at ${info.descriptorRing.lowest} … ${info.descriptorRing.highest} (${info.descriptorRing.slotsSeen} descriptor slots)`}`);
    out.line(`checksums       ${typeof info.checksums === 'object' && info.checksums !== null ? `${info.checksums.ok} match, ${info.checksums.bad} differ` : (info.checksums ?? '-')}`);
    const w = Object.entries(asm.warnings).filter(([, n]) => n !== 0);
    out.line(`warnings        ${w.length === 0 ? 'none' : w.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    out.line(`ends cleanly    ${scan.damage === null ? 'yes' : `no: ${scan.damage.message}`}`);
  }
  await out.end();
  if (scan.damage !== null) process.exitCode = exitCodeFor(scan.damage);
}

export async function krrLogEntriesCommand(file: string, o: { json?: boolean; layout?: string }, out = new LineOutput()): Promise<void> {
  const layout = parseLayoutOption(o.layout);
  const sgs: { addr: string; length: number }[] = [];
  const asm = new KrrFrameAssembler();
  asm.onWriteback = (e, sg, wb) => {
    if (out.closed) return;
    const rec = {
      entry: e.index,
      offset: e.offset,
      instCnt: e.instCnt < 0 ? null : e.instCnt,
      cpu: e.cpuId < 0 ? null : e.cpuId,
      followNum: e.followNum < 0 ? null : e.followNum,
      ...(e.rip > 0n ? { rip: hex(e.rip) } : {}),
      sgs: sgs.slice(),
      writeback: { addr: hex(sg.addr), bufferAddr: hex(wb.bufferAddr), length: wb.length, status: statusNames(wb.status), errors: errorNames(wb.errors), special: wb.special },
    };
    if (o.json) out.line(JSON.stringify(rec));
    else {
      const pieces = rec.sgs.map((s) => `${s.addr}+${s.length}`).join(' ');
      out.line(
        `#${rec.entry} icount=${rec.instCnt ?? '-'} cpu=${rec.cpu ?? '-'} follow=${rec.followNum ?? '-'}${e.rip > 0n ? ` rip=${hex(e.rip)}` : ''} data=[${pieces}] wb@${rec.writeback.addr} len=${wb.length} status=${rec.writeback.status.join('|') || '0'}${wb.errors !== 0 ? ` errors=${rec.writeback.errors.join('|')}` : ''}${wb.special !== 0 ? ` special=0x${wb.special.toString(16)}` : ''}`,
      );
    }
  };
  const scan = await scanKrrLog(
    file,
    {
      entry(e) {
        sgs.length = 0;
        asm.entry(e);
      },
      sg(e, sg, d) {
        if (!sg.isWriteback) sgs.push({ addr: hex(sg.addr), length: sg.length });
        asm.sg(e, sg, d);
      },
      entryEnd: (e) => asm.entryEnd(e),
    },
    { ...(layout === undefined ? {} : { layout }), afterChunk: () => out.settle() },
  );
  await out.end();
  if (scan.damage !== null) throw scan.damage;
}

/** Frames → pcapng: one packet per rebuilt frame, icount, cpu and entry in custom options. */
export async function krrLogExportCommand(file: string, output: string, o: { layout?: string }): Promise<{ frames: number }> {
  const layout = parseLayoutOption(o.layout);
  let fh;
  try {
    fh = await open(output, 'w');
  } catch (e) {
    throw fromSystemError(e, output);
  }
  // Made in onLayout, which the scan calls before any entry, so that the section comment can name the layout.
  const out: { w: PcapngWriter | null; iface: number } = { w: null, iface: -1 };
  const progress = new Progress(`exporting ${file}`);
  const asm = new KrrFrameAssembler((f) => {
    // The log has no time: packet i is stamped i µs after the epoch, which keeps file order and says nothing more.
    out.w!.writePacket(out.iface, Math.floor(f.index / 1e6), (f.index % 1e6) * 1000, f.data, f.data.length, {
      flags: 1,
      custom: [`icount=${f.instCnt < 0 ? '-' : f.instCnt}`, `cpu=${f.cpuId < 0 ? '-' : f.cpuId}`, f.firstEntry === f.lastEntry ? `entry=${f.lastEntry}` : `entries=${f.firstEntry}-${f.lastEntry}`, ...(f.vlanTci >= 0 ? [`vlan-stripped=${f.vlanTci}`] : [])],
    });
  });
  let scan: KrrLogScan;
  try {
    scan = await scanKrrLog(
      file,
      {
        entry: (e) => asm.entry(e),
        sg: (e, sg, d) => asm.sg(e, sg, d),
        entryEnd: (e) => asm.entryEnd(e),
      },
      {
        ...(layout === undefined ? {} : { layout }),
        onLayout: (l) => {
          out.w = exportWriter(file, l?.name ?? 'none (empty log)');
          out.iface = out.w.addInterface({ linkType: 1, name: 'e1000-rx', description: 'frames the e1000 model DMA-ed into the guest, as KRR logged them (short frames padded to 60 bytes, no FCS)' });
        },
        afterChunk: async (read, total) => {
          progress.update(read, total);
          const c = out.w?.out.take() ?? null;
          if (c !== null) await fh.write(c);
        },
      },
    );
    asm.finish();
    const rest = out.w?.out.take() ?? null;
    if (rest !== null) await fh.write(rest);
  } finally {
    progress.done();
    await fh.close();
  }
  if (scan.damage !== null) {
    throw new NetrrError(scan.damage.code, `${scan.damage.message}; exported the ${asm.frames} frames completed before it`, { offset: scan.damage.offset ?? 0 });
  }
  return { frames: asm.frames };
}

function exportWriter(file: string, layoutName: string): PcapngWriter {
  return new PcapngWriter({
    userAppl: 'netrr krr-log export',
    comment: `KRR network log ${file}, layout ${layoutName}: frames received by the e1000 model in descriptor completion order. The log holds no timestamps; each packet's time is a placeholder (its index in microseconds after 1970-01-01), and its instruction count is in a custom option.`,
  });
}
