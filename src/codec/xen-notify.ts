// Xen COLO notify_dev messages (reference output-buffering.md "Xen COLO ↔ QEMU
// colo-compare" and colo-proxy.md §8.9): QEMU's socket framing around ASCII
// payloads with no NUL. Incoming records carry the vnet field when the compare
// has vnet_hdr_support (upstream asymmetry); outgoing ones never do.

import { NetrrError } from '../errors.ts';
import { encodeRecord } from './qemu-framing.ts';

export const NOTIFY_MESSAGES = [
  'COLO_USERSPACE_PROXY_INIT',
  'COLO_COMPARE_GET_XEN_INIT',
  'COLO_CHECKPOINT',
  'DO_CHECKPOINT',
] as const;

export type NotifyMessage = (typeof NOTIFY_MESSAGES)[number];

const BY_TEXT: ReadonlyMap<string, NotifyMessage> = new Map(NOTIFY_MESSAGES.map((m) => [m, m]));
/** Longest message we try to interpret as text in an error. */
const MAX_SHOWN_BYTES = 40;

/** Encodes an outgoing notify record (never with a vnet field). */
export function encodeNotify(message: NotifyMessage): Uint8Array {
  return encodeRecord(new TextEncoder().encode(message));
}

/** Interprets one decoded record's payload; unknown text is ERR_NOTIFY_UNKNOWN. */
export function parseNotify(payload: Uint8Array): NotifyMessage {
  let text = '';
  let printable = true;
  for (let i = 0; i < payload.length && i < MAX_SHOWN_BYTES + 1; i++) {
    const c = payload[i]!;
    if (c < 0x20 || c > 0x7e) printable = false;
    text += String.fromCharCode(c);
  }
  const known = payload.length <= MAX_SHOWN_BYTES ? BY_TEXT.get(text) : undefined;
  if (known !== undefined) return known;
  const shown = printable ? JSON.stringify(text.slice(0, MAX_SHOWN_BYTES)) : `${payload.length} non-text bytes`;
  throw new NetrrError('ERR_NOTIFY_UNKNOWN', `unsupported notify instruction ${shown}`);
}
