// Layout detection for KRR's network log, which has no header or version:
// parse the first bytes under every layout and keep those that read sanely
// (reference krr-network-log.md, "How this was checked": logs written to each
// layout parse under exactly that layout and no other). Pure: the caller
// reads the bytes.

import { NetrrError } from '../errors.ts';
import { RXD_STAT_DD, WRITEBACK_STATUS_AT } from './krr-frames.ts';
import { KRR_LAYOUTS, type KrrLayout } from './krr-layout.ts';
import { type KrrEntry, KrrLogParser, type KrrSg, type KrrVisitor } from './krr-log.ts';

/** Bytes read for detection: at least 120 entries of the largest layout (65 608 bytes each). */
export const KRR_DETECT_BYTES = 8 * 1024 * 1024;

/** Entries a damaged log's layout must have read before the damage for detection to still name it. */
export const KRR_DETECT_MIN_PARTIAL_ENTRIES = 2;

export interface LayoutVerdict {
  readonly layout: KrrLayout;
  readonly fits: boolean;
  /** Entries parsed before the verdict. */
  readonly entries: number;
  /** The whole file was read and ended between entries. */
  readonly clean: boolean;
  /** Why it fits or was ruled out. */
  readonly reason: string;
}

const ddCheck: KrrVisitor = {
  entry(): void {},
  sg(e: KrrEntry, sg: KrrSg, data: Uint8Array): void {
    // e1000 sets DD in every write-back it makes (reference: "status has DD (0x01) on every descriptor").
    if (sg.isWriteback && (data[WRITEBACK_STATUS_AT]! & RXD_STAT_DD) === 0) {
      throw new NetrrError('ERR_KRR_LOG_BAD_ENTRY', `entry ${e.index}'s write-back at offset ${sg.offset} lacks the DD bit`, { offset: sg.offset });
    }
  },
  entryEnd(): void {},
};

/** Judges every layout on `head`, the file's first bytes (`whole` when that is all of it). */
export function judgeLayouts(head: Uint8Array, whole: boolean): LayoutVerdict[] {
  return KRR_LAYOUTS.map((layout) => {
    const p = new KrrLogParser(layout, ddCheck);
    try {
      const used = p.parse(head, 0, head.length);
      if (p.entries === 0) {
        return { layout, fits: false, entries: 0, clean: false, reason: `no whole entry in ${head.length} bytes (one needs at least ${layout.entryBytes + layout.sgBytes + 16})` };
      }
      const clean = whole && p.atBoundary && used === head.length;
      const reason = clean ? `parses all ${p.entries} entries to the end of the file` : whole ? `parses ${p.entries} entries, then the file ends ${p.describeState()}` : `parses ${p.entries} entries in the first ${head.length} bytes`;
      return { layout, fits: true, entries: p.entries, clean, reason };
    } catch (e) {
      if (!(e instanceof NetrrError)) throw e;
      return { layout, fits: false, entries: p.entries, clean: false, reason: e.message };
    }
  });
}

/**
 * The one layout the verdicts allow. With the whole file read, a layout that
 * ends cleanly beats one that ends mid-entry (a cut-short log still detects
 * when only its own layout reads it). When none reads it all, the one that
 * read the most entries, if at least KRR_DETECT_MIN_PARTIAL_ENTRIES and more
 * than any other (damage early in the file). None or several: ERR_KRR_LOG_LAYOUT.
 */
export function chooseLayout(verdicts: readonly LayoutVerdict[], whole: boolean): KrrLayout {
  const fits = verdicts.filter((v) => v.fits);
  const clean = fits.filter((v) => v.clean);
  const pick = whole && clean.length > 0 ? clean : fits;
  if (pick.length === 1) return pick[0]!.layout;
  if (pick.length === 0) {
    // Damage early in a log rules out its own layout too; one that read clearly more entries than any other still names it, and the scan reports the damage.
    const byEntries = [...verdicts].sort((a, b) => b.entries - a.entries);
    const [best, next] = byEntries;
    if (best !== undefined && best.entries >= KRR_DETECT_MIN_PARTIAL_ENTRIES && (next === undefined || next.entries < best.entries)) return best.layout;
    const why = verdicts.map((v) => `${v.layout.name}: ${v.reason}`).join('; ');
    throw new NetrrError('ERR_KRR_LOG_LAYOUT', `no KRR network-log layout reads this file (${why})`, { offset: 0 });
  }
  throw new NetrrError('ERR_KRR_LOG_LAYOUT', `several KRR layouts read this file: ${pick.map((v) => v.layout.name).join(', ')}; choose one with --layout`, { offset: 0 });
}
