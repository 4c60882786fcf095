// The nine on-disk layouts of KRR's `kernel_rr_network.log` (reference
// krr-network-log.md, "Layouts"): raw x86-64 structs, no header or version,
// so a reader is told the layout or detects it. A layout is plain data here;
// the parser (krr-log.ts) reads any of them through these offsets.

export interface KrrLayout {
  readonly name: string;
  /** First krr-io/krr-qemu commit with this layout, and its date. */
  readonly since: string;
  /** sizeof(rr_dma_entry). */
  readonly entryBytes: number;
  /** sizeof(rr_sg_data): 32, 40 or 48. */
  readonly sgBytes: number;
  /** Length of the entry's `sgs[]` pointer array; 0 for the linked-list layouts. */
  readonly sgArray: number;
  /** Offsets of the fields the network path sets (-1: not in this layout). */
  readonly replayedSgsAt: number;
  readonly instCntAt: number;
  readonly ripAt: number;
  /** Whether `rip` carries vCPU 0's RIP (arr1024-inst); later layouts keep the field and always write 0. */
  readonly ripSet: boolean;
  readonly followNumAt: number;
  readonly cpuIdAt: number;
  /** Whether SG `checksum` holds the sum of the data bytes (every layout before list-docheck). */
  readonly sgChecksumValid: boolean;
}

function layout(name: string, since: string, entryBytes: number, sgBytes: number, sgArray: number, f: { replayed: number; inst?: number; rip?: number; ripSet?: boolean; follow?: number; cpu?: number }, sgChecksumValid = true): KrrLayout {
  return {
    name,
    since,
    entryBytes,
    sgBytes,
    sgArray,
    replayedSgsAt: f.replayed,
    instCntAt: f.inst ?? -1,
    ripAt: f.rip ?? -1,
    ripSet: f.ripSet === true,
    followNumAt: f.follow ?? -1,
    cpuIdAt: f.cpu ?? -1,
    sgChecksumValid,
  };
}

/** Oldest first, as the reference's table. */
export const KRR_LAYOUTS: readonly KrrLayout[] = [
  layout('arr1024', '1ba2c99879a8 (2024-05-21)', 8216, 32, 1024, { replayed: 8208 }),
  layout('arr1024-inst', '1174b1a0bdef (2024-06-10)', 8240, 32, 1024, { replayed: 8208, inst: 8216, rip: 8224, ripSet: true, follow: 8232 }),
  layout('arr1024-cpu', 'e8b06783500d (2024-06-10)', 8248, 32, 1024, { replayed: 8208, inst: 8216, rip: 8224, follow: 8232, cpu: 8240 }),
  layout('arr8192-cpu', 'fa572cd5a1d1 (2024-12-15)', 65592, 32, 8192, { replayed: 65552, inst: 65560, rip: 65568, follow: 65576, cpu: 65584 }),
  layout('arr8192-devtype', '6d278f938571 (2025-02-18)', 65600, 32, 8192, { replayed: 65552, inst: 65560, rip: 65568, follow: 65576, cpu: 65584 }),
  layout('arr8192-devindex', '16a2dcdadf6e (2025-02-23)', 65608, 32, 8192, { replayed: 65552, inst: 65560, rip: 65568, follow: 65576, cpu: 65584 }),
  layout('list', '4c248e890992 (2025-03-30)', 88, 40, 0, { replayed: 16, inst: 24, rip: 32, follow: 40, cpu: 48 }),
  layout('list-owner', '0aa388c88aa0 (2025-04-13)', 96, 40, 0, { replayed: 16, inst: 24, rip: 32, follow: 40, cpu: 48 }),
  layout('list-docheck', 'a3b84f6a41a5 (2025-04-17)', 96, 48, 0, { replayed: 16, inst: 24, rip: 32, follow: 40, cpu: 48 }, false),
];

export const KRR_LAYOUT_NAMES: readonly string[] = KRR_LAYOUTS.map((l) => l.name);

export function krrLayoutByName(name: string): KrrLayout | undefined {
  return KRR_LAYOUTS.find((l) => l.name === name);
}

// SG struct fields common to all layouts (reference: "SG fields").
export const SG_ADDR_AT = 0;
export const SG_LEN_AT = 8;
export const SG_CHECKSUM_AT = 16;
