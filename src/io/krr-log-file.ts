// Streams a KRR network log through KrrLogParser with a bounded window, after
// detecting its layout from the first KRR_DETECT_BYTES (or taking the one the
// user named). Damage does not discard what came before it: the visitor has
// seen every entry up to the bad one, and the scan reports the damage.

import { NetrrError, isNetrrError } from '../errors.ts';
import { KRR_DETECT_BYTES, type LayoutVerdict, chooseLayout, judgeLayouts } from '../codec/krr-detect.ts';
import { KRR_LAYOUT_NAMES, type KrrLayout, krrLayoutByName } from '../codec/krr-layout.ts';
import { KrrLogParser, type KrrVisitor } from '../codec/krr-log.ts';
import { openWithHead, readWindowed } from './windowed-read.ts';

export interface KrrLogScan {
  readonly fileBytes: number;
  /** null for an empty file: a recording in which no frame arrived. */
  readonly layout: KrrLayout | null;
  /** How each layout fared in detection (empty when --layout chose). */
  readonly verdicts: readonly LayoutVerdict[];
  /** The parser, for its counts (entries, SGs, bytes, checksums). */
  readonly parser: KrrLogParser | null;
  /** Where reading stopped early, or null when the file ends cleanly. */
  readonly damage: NetrrError | null;
}

export function parseLayoutOption(name: string | undefined): KrrLayout | undefined {
  if (name === undefined) return undefined;
  const l = krrLayoutByName(name);
  if (l === undefined) throw new NetrrError('ERR_BAD_OPTION', `--layout ${name}: not a KRR layout (one of ${KRR_LAYOUT_NAMES.join(', ')})`);
  return l;
}

export async function scanKrrLog(path: string, visitor: KrrVisitor, options: { layout?: KrrLayout; onLayout?: (layout: KrrLayout | null) => void; afterChunk?: (read: number, total: number) => Promise<void> | void } = {}): Promise<KrrLogScan> {
  const { fh, fileBytes, head } = await openWithHead(path, KRR_DETECT_BYTES);
  try {
    // KRR opens the file before writing anything, so an empty recording is a 0-byte file.
    if (fileBytes === 0) {
      options.onLayout?.(options.layout ?? null);
      return { fileBytes, layout: options.layout ?? null, verdicts: [], parser: null, damage: null };
    }
    let verdicts: LayoutVerdict[] = [];
    let layout = options.layout;
    if (layout === undefined) {
      const whole = head.length === fileBytes;
      verdicts = judgeLayouts(head, whole);
      layout = chooseLayout(verdicts, whole);
    }
    options.onLayout?.(layout);
    const parser = new KrrLogParser(layout, visitor);
    let damage: NetrrError | null = null;
    try {
      const left = await readWindowed(fh, 0, { parse: (w, a, b) => parser.parse(w, a, b), get needBytes() { return parser.needBytes; } }, options.afterChunk === undefined ? undefined : (read) => options.afterChunk!(read, fileBytes));
      if (left > 0 || !parser.atBoundary) {
        const where = parser.atBoundary ? `entry ${parser.entries} at offset ${parser.offset} has only ${left} of its ${layout.entryBytes} bytes` : `it ends ${parser.describeState()}`;
        damage = new NetrrError('ERR_KRR_LOG_TRUNCATED', `the log is cut short (KRR's writer stopped?): ${where}`, { offset: parser.offset });
      }
    } catch (e) {
      if (!isNetrrError(e)) throw e;
      damage = e;
    }
    return { fileBytes, layout, verdicts, parser, damage };
  } finally {
    await fh.close();
  }
}
