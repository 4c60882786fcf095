// What the pcap and pcapng parsers hand out: one mutable record object per
// parser, refilled for every packet (no per-packet allocation). `data` views
// the parser's input window: copy it to keep it past the callback.

export interface CaptureInterface {
  readonly id: number;
  readonly linkType: number;
  readonly snapLen: number;
  /** Timestamp units per second, as a divisor (1e6 for µs, 1e9 for ns, 2^k for binary). */
  readonly tsUnitsPerSec: number;
  /** if_tsoffset, seconds added to every timestamp. */
  readonly tsOffsetSec: number;
  readonly name: string | undefined;
  readonly description: string | undefined;
  /** Section the interface belongs to (0 for pcap). */
  readonly section: number;
}

/** EPB direction (pcapng §4.3.1 epb_flags bits 0-1). */
export const DIRECTION_UNKNOWN = 0;
export const DIRECTION_INBOUND = 1;
export const DIRECTION_OUTBOUND = 2;

export class CaptureRecord {
  /** 0-based index over the whole file. */
  index = -1;
  /** File-wide index of the interface (across sections). */
  interfaceIndex = 0;
  /** The packet's interface (pcapng keeps only the current section's, so look it up here). */
  iface: CaptureInterface | null = null;
  linkType = 1;
  tsSec = 0;
  tsNsec = 0;
  capturedLength = 0;
  originalLength = 0;
  data: Uint8Array = new Uint8Array(0);
  /** epb_flags, or -1 when absent. */
  flags = -1;
  /** Raw pcapng options of the block (parse with readOptions), empty for pcap. */
  options: Uint8Array = new Uint8Array(0);
  /** Byte order of `options` (pcapng section). */
  littleEndian = true;
}

/** Formats seconds + nanoseconds as tshark's frame.time_epoch ("1234.567890123"). */
export function formatEpoch(sec: number, nsec: number): string {
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}
