// Classic pcap writer (little-endian, like QEMU's filter-dump on x86).

import { NetrrError } from '../errors.ts';
import { OutputBuffer } from './output-buffer.ts';
import { PCAP_RECORD_HEADER_BYTES, encodePcapHeader, encodePcapRecordInto } from './pcap-format.ts';

export const DEFAULT_SNAPLEN = 262144;

export class PcapWriter {
  readonly out = new OutputBuffer();
  readonly nanosecond: boolean;
  readonly snapLen: number;
  packets = 0;

  constructor(linkType: number, options: { snapLen?: number; nanosecond?: boolean } = {}) {
    this.nanosecond = options.nanosecond ?? true;
    this.snapLen = options.snapLen ?? DEFAULT_SNAPLEN;
    const h = encodePcapHeader(linkType, this.snapLen, this.nanosecond);
    const o = this.out.reserve(h.length);
    this.out.buf.set(h, o);
    this.out.fill += h.length;
  }

  writePacket(tsSec: number, tsNsec: number, data: Uint8Array, originalLength = data.length): void {
    if (data.length > this.snapLen) {
      throw new NetrrError('ERR_PCAP_BAD_RECORD', `packet of ${data.length} bytes exceeds snap length ${this.snapLen}`);
    }
    const o = this.out.reserve(PCAP_RECORD_HEADER_BYTES + data.length);
    this.out.fill = encodePcapRecordInto(this.out.buf, o, tsSec, tsNsec, this.nanosecond, data, originalLength);
    this.packets++;
  }
}
