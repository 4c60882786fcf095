// netrr pcap info|cat|convert

import { open } from 'node:fs/promises';
import { NetrrError, fromSystemError } from '../errors.ts';
import { readCaptureFile } from '../io/capture-file.ts';
import { type CaptureInterface, DIRECTION_INBOUND, DIRECTION_OUTBOUND, formatEpoch } from '../pcap/capture-record.ts';
import { CaptureStream } from '../pcap/capture-stream.ts';
import type { OutputBuffer } from '../pcap/output-buffer.ts';
import { PCAPNG_MAX_LISTED, readPacketOptions } from '../pcap/pcapng-format.ts';
import { PcapWriter } from '../pcap/pcap-writer.ts';
import { PcapngWriter } from '../pcap/pcapng-writer.ts';
import { LineOutput, Progress } from './output.ts';

function tsresolText(i: CaptureInterface): string {
  const ups = i.tsUnitsPerSec;
  const log10 = Math.round(Math.log10(ups));
  return 10 ** log10 === ups ? `1e-${log10} s` : `2^-${Math.round(Math.log2(ups))} s`;
}

export async function pcapInfoCommand(file: string, opts: { json?: boolean }, out = new LineOutput()): Promise<void> {
  let packets = 0;
  let capBytes = 0;
  let wireBytes = 0;
  let firstSec = -1;
  let firstNsec = 0;
  let lastSec = 0;
  let lastNsec = 0;
  let minSec = Infinity;
  let maxSec = -Infinity;
  const perIface = new Map<number, number>();
  const stream = new CaptureStream((r) => {
    packets++;
    capBytes += r.capturedLength;
    wireBytes += r.originalLength;
    if (firstSec < 0) {
      firstSec = r.tsSec;
      firstNsec = r.tsNsec;
    }
    lastSec = r.tsSec;
    lastNsec = r.tsNsec;
    const t = r.tsSec + r.tsNsec / 1e9;
    if (t < minSec) minSec = t;
    if (t > maxSec) maxSec = t;
    // Counted for the listed interfaces only: a file of a million interfaces must not grow this map.
    if (r.interfaceIndex < PCAPNG_MAX_LISTED) perIface.set(r.interfaceIndex, (perIface.get(r.interfaceIndex) ?? 0) + 1);
  });
  let failure: unknown = null;
  try {
    await readCaptureFile(file, () => {}, { stream });
  } catch (e) {
    failure = e;
  }
  const info: Record<string, unknown> = {
    file,
    format: stream.format,
    packets,
    capturedBytes: capBytes,
    wireBytes,
  };
  if (stream.pcapHeader !== null) {
    const h = stream.pcapHeader;
    info.version = `${h.versionMajor}.${h.versionMinor}`;
    info.byteOrder = h.littleEndian ? 'little-endian' : 'big-endian';
    info.resolution = h.nanosecond ? 'ns' : 'us';
    info.snapLen = h.snapLen;
    info.linkType = h.linkType;
    if (h.fcsBytes > 0) info.fcsBytes = h.fcsBytes;
  }
  const ng = stream.pcapng;
  if (ng !== null) {
    info.sections = ng.sections.map((s) => ({
      byteOrder: s.littleEndian ? 'little-endian' : 'big-endian',
      version: `${s.versionMajor}.${s.versionMinor}`,
      ...(s.userAppl !== undefined ? { userAppl: s.userAppl } : {}),
      ...(s.os !== undefined ? { os: s.os } : {}),
      ...(s.hardware !== undefined ? { hardware: s.hardware } : {}),
      ...(s.comments.length > 0 ? { comments: s.comments } : {}),
    }));
    info.interfaces = ng.interfaces.map((i) => ({
      id: i.id,
      section: i.section,
      linkType: i.linkType,
      snapLen: i.snapLen,
      tsresol: tsresolText(i),
      packets: perIface.get(i.id) ?? 0,
      ...(i.name !== undefined ? { name: i.name } : {}),
      ...(i.description !== undefined ? { description: i.description } : {}),
      ...(ng.stats.has(i.id) ? { stats: ng.stats.get(i.id) } : {}),
    }));
    if (ng.sectionCount > ng.sections.length) info.sectionsNotListed = ng.sectionCount - ng.sections.length;
    if (ng.interfaceCount > ng.interfaces.length) info.interfacesNotListed = ng.interfaceCount - ng.interfaces.length;
    if (ng.interfacesOverLimit > 0) info.interfacesOverLimit = ng.interfacesOverLimit;
    if (ng.commentsOverLimit > 0) info.commentsNotListed = ng.commentsOverLimit;
    info.skippedBlocks = ng.skippedBlocks;
    if (ng.badOptionLists > 0) info.badOptionLists = ng.badOptionLists;
  }
  if (packets > 0) {
    info.first = formatEpoch(firstSec, firstNsec);
    info.last = formatEpoch(lastSec, lastNsec);
    info.durationSec = Number((maxSec - minSec).toFixed(6));
  }
  if (failure !== null) {
    const e = failure as NetrrError;
    info.error = { code: e.code ?? 'ERR_INTERNAL', message: e.message };
  }
  if (opts.json) out.line(JSON.stringify(info));
  else {
    for (const [k, v] of Object.entries(info)) {
      if (Array.isArray(v)) {
        out.line(`${k}:`);
        for (const item of v) out.line(`  ${JSON.stringify(item)}`);
      } else out.line(`${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
  }
  await out.end();
  if (failure !== null) throw failure;
}

function directionName(flags: number): string {
  const d = flags & 3;
  return d === DIRECTION_INBOUND ? 'in' : d === DIRECTION_OUTBOUND ? 'out' : '-';
}

function hexDump(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

export async function pcapCatCommand(file: string, opts: { json?: boolean; hex?: boolean }, out = new LineOutput()): Promise<void> {
  await readCaptureFile(
    file,
    (r) => {
      if (out.closed) return;
      const o = r.options.length > 0 ? readPacketOptions(r.options, r.littleEndian) : null;
      const rec: Record<string, unknown> = {
        frame: r.index + 1,
        interface: r.interfaceIndex,
        time: formatEpoch(r.tsSec, r.tsNsec),
        caplen: r.capturedLength,
        len: r.originalLength,
      };
      if (r.flags >= 0) rec.direction = directionName(r.flags);
      if (o !== null && o.comments.length > 0) rec.comments = o.comments;
      if (o !== null && o.custom.length > 0) {
        rec.custom = o.custom.map((c) => ({ code: c.code, pen: c.pen, value: c.code === 2988 || c.code === 19372 ? Buffer.from(c.value).toString('utf8') : hexDump(c.value) }));
      }
      if (opts.hex) rec.data = hexDump(r.data);
      if (opts.json) out.line(JSON.stringify(rec));
      else {
        let line = `${rec.frame} if${rec.interface} ${rec.time} ${rec.caplen}/${rec.len}`;
        if (rec.direction !== undefined) line += ` ${rec.direction}`;
        if (o !== null) for (const c of o.comments) line += ` comment=${JSON.stringify(c)}`;
        if (rec.custom !== undefined) line += ` custom=${JSON.stringify(rec.custom)}`;
        if (opts.hex) line += ` ${rec.data}`;
        out.line(line);
      }
    },
    { afterChunk: () => out.settle() },
  );
  await out.end();
}

export type CaptureFormatName = 'pcap' | 'pcapng';

export async function pcapConvertCommand(input: string, output: string, opts: { to?: string }): Promise<{ packets: number }> {
  const to: CaptureFormatName = (opts.to ?? (output.endsWith('.pcap') ? 'pcap' : 'pcapng')) as CaptureFormatName;
  if (to !== 'pcap' && to !== 'pcapng') throw new NetrrError('ERR_BAD_OPTION', `--to must be pcap or pcapng, not "${opts.to}"`);
  let fh;
  try {
    fh = await open(output, 'w');
  } catch (e) {
    throw fromSystemError(e, output);
  }
  const progress = new Progress(`converting ${input}`);
  let ng: PcapngWriter | null = null;
  let pc: PcapWriter | null = null;
  let pcLinkType = -1;
  const ifMap = new Map<number, number>();
  let stream: CaptureStream | null = null;
  const outBuf = (): OutputBuffer | null => (ng ?? pc)?.out ?? null;
  try {
    stream = new CaptureStream((r) => {
      const iface = r.iface!;
      if (to === 'pcapng') {
        if (ng === null) ng = new PcapngWriter({ userAppl: 'netrr pcap convert' });
        let id = ifMap.get(r.interfaceIndex);
        if (id === undefined) {
          const spec: { linkType: number; snapLen: number; name?: string; description?: string } = { linkType: iface.linkType, snapLen: iface.snapLen };
          if (iface.name !== undefined) spec.name = iface.name;
          if (iface.description !== undefined) spec.description = iface.description;
          id = ng.addInterface(spec);
          ifMap.set(r.interfaceIndex, id);
        }
        const meta = r.options.length > 0 ? readPacketOptions(r.options, r.littleEndian) : null;
        const m: { flags?: number; comments?: string[] } = {};
        if (r.flags >= 0) m.flags = r.flags;
        if (meta !== null && meta.comments.length > 0) m.comments = meta.comments;
        ng.writePacket(id, r.tsSec, r.tsNsec, r.data, r.originalLength, m.flags !== undefined || m.comments !== undefined ? m : undefined);
      } else {
        if (pc === null) {
          pcLinkType = iface.linkType;
          const snapLen = Math.max(...stream!.interfaces.map((i) => i.snapLen), 65535);
          pc = new PcapWriter(iface.linkType, { snapLen, nanosecond: true });
        }
        if (iface.linkType !== pcLinkType) {
          throw new NetrrError('ERR_BAD_OPTION', `pcap holds one link type: packet ${r.index + 1} has ${iface.linkType}, the file began with ${pcLinkType}; convert to pcapng instead`);
        }
        pc.writePacket(r.tsSec, r.tsNsec, r.data.length > pc.snapLen ? r.data.subarray(0, pc.snapLen) : r.data, r.originalLength);
      }
    });
    await readCaptureFile(input, () => {}, {
      stream,
      afterChunk: async (p) => {
        progress.update(p.bytesRead, p.fileBytes);
        const chunk = outBuf()?.take() ?? null;
        if (chunk !== null) await fh.write(chunk);
      },
    });
    if (ng === null && pc === null) {
      // No packets: still write a valid, empty file of the requested format.
      if (to === 'pcapng') {
        ng = new PcapngWriter({ userAppl: 'netrr pcap convert' });
        for (const i of stream.interfaces) ng.addInterface({ linkType: i.linkType, snapLen: i.snapLen });
      } else pc = new PcapWriter(stream.interfaces[0]?.linkType ?? 1);
    }
    const rest = outBuf()?.take() ?? null;
    if (rest !== null) await fh.write(rest);
    return { packets: stream.packets };
  } finally {
    progress.done();
    await fh.close();
  }
}
