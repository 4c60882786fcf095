// Normalizers: header fields that legitimately differ between two replicas
// and are ignored when extended mode compares headers (reference
// users-and-checklist.md item 5: "TCP timestamps, SACK, and IP ID differ
// between replicas"). QEMU compares TCP payload only and other protocols
// byte for byte including the IP header; extended mode compares
// - the IP header and beyond for protocols other than TCP/UDP/ICMP, and
// - the TCP header (flags, window, options) of exactly matched segments,
// with the fields named here masked out.

import { NetrrError } from '../../errors.ts';

export const NORMALIZERS = ['ip-id', 'ttl', 'ip-tos', 'tcp-timestamps', 'tcp-sack', 'tcp-window'] as const;
export type Normalizer = (typeof NORMALIZERS)[number];
export const DEFAULT_NORMALIZERS: readonly Normalizer[] = ['ip-id', 'ttl', 'tcp-timestamps', 'tcp-sack', 'tcp-window'];

export function parseNormalizers(text: string): Normalizer[] {
  if (text === 'none' || text === '') return [];
  if (text === 'default') return [...DEFAULT_NORMALIZERS];
  const out: Normalizer[] = [];
  for (const n of text.split(',').map((x) => x.trim())) {
    if (!(NORMALIZERS as readonly string[]).includes(n)) {
      throw new NetrrError('ERR_BAD_OPTION', `unknown normalizer "${n}" (known: ${NORMALIZERS.join(', ')}, or none/default)`);
    }
    if (!out.includes(n as Normalizer)) out.push(n as Normalizer);
  }
  return out;
}

/** Bit set of normalizers, for the hot path. */
export const N_IP_ID = 1;
export const N_TTL = 2;
export const N_IP_TOS = 4;
export const N_TCP_TS = 8;
export const N_TCP_SACK = 16;
export const N_TCP_WINDOW = 32;

export function normalizerMask(list: readonly Normalizer[]): number {
  let m = 0;
  for (const n of list) m |= n === 'ip-id' ? N_IP_ID : n === 'ttl' ? N_TTL : n === 'ip-tos' ? N_IP_TOS : n === 'tcp-timestamps' ? N_TCP_TS : n === 'tcp-sack' ? N_TCP_SACK : N_TCP_WINDOW;
  return m;
}

/** True when byte i of an IP header (at l3) is masked by the normalizers. */
function ipMasked(family: number, i: number, mask: number): boolean {
  if (family === 4) {
    if (i === 10 || i === 11) return (mask & (N_IP_ID | N_TTL | N_IP_TOS)) !== 0; // the checksum follows masked fields
    if (i === 4 || i === 5) return (mask & N_IP_ID) !== 0;
    if (i === 8) return (mask & N_TTL) !== 0;
    if (i === 1) return (mask & N_IP_TOS) !== 0;
    return false;
  }
  // IPv6: traffic class spans bytes 0-1, the flow label (per-flow random on Linux, like the IPv4 ID) bytes 1-3.
  if (i === 7) return (mask & N_TTL) !== 0;
  if (i === 1 || i === 2 || i === 3) return (mask & (N_IP_ID | N_IP_TOS)) !== 0;
  return false;
}

/**
 * Compares two frames from `start` (after the vnet header) to the end, with
 * normalized IP header bytes ignored. Returns -1 when equal, else the
 * offset (from start) of the first difference that counts.
 */
export function compareNormalizedFrames(a: Uint8Array, b: Uint8Array, start: number, l3: number, ipHeaderLen: number, family: number, mask: number): number {
  if (a.length !== b.length) return Math.min(a.length, b.length) - start;
  for (let i = start; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (i >= l3 && i < l3 + ipHeaderLen && ipMasked(family, i - l3, mask)) continue;
    return i - start;
  }
  return -1;
}

const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_SACK = 5;
const TCPOPT_TIMESTAMP = 8;
/** Flags whose difference is a real divergence (PSH/ECE/CWR may legitimately differ). */
const TCP_SIGNIFICANT_FLAGS = 0x01 | 0x02 | 0x04 | 0x20;

/** Next option start at or after i, skipping NOPs; `end` when the list is over. */
function nextOption(d: Uint8Array, i: number, end: number): number {
  while (i < end && d[i] === TCPOPT_NOP) i++;
  return i < end && d[i] === TCPOPT_EOL ? end : i;
}

/** Lockstep walk of two option lists, allocation-free; masked kinds compare by kind and length only. */
function optionsEqual(a: Uint8Array, ai: number, aend: number, b: Uint8Array, bi: number, bend: number, mask: number): boolean {
  for (;;) {
    ai = nextOption(a, ai, aend);
    bi = nextOption(b, bi, bend);
    if (ai >= aend || bi >= bend) return ai >= aend && bi >= bend;
    const kind = a[ai]!;
    if (kind !== b[bi] || ai + 1 >= aend || bi + 1 >= bend) return false;
    const len = a[ai + 1]!;
    if (len !== b[bi + 1] || len < 2 || ai + len > aend || bi + len > bend) return false;
    const masked = (kind === TCPOPT_TIMESTAMP && (mask & N_TCP_TS) !== 0) || (kind === TCPOPT_SACK && (mask & N_TCP_SACK) !== 0);
    if (!masked) for (let k = 2; k < len; k++) if (a[ai + k] !== b[bi + k]) return false;
    ai += len;
    bi += len;
  }
}

/**
 * Compares the TCP headers (at l4 in each) of two segments carrying the same
 * data: significant flags, the window unless normalized, and the options with
 * timestamps / SACK blocks normalized. Returns null when equal, else the name
 * of the first field that differs.
 */
export function tcpHeaderDifference(a: Uint8Array, al4: number, b: Uint8Array, bl4: number, mask: number): string | null {
  if ((a[al4 + 13]! & TCP_SIGNIFICANT_FLAGS) !== (b[bl4 + 13]! & TCP_SIGNIFICANT_FLAGS)) return 'tcp-flags';
  if ((mask & N_TCP_WINDOW) === 0 && (a[al4 + 14] !== b[bl4 + 14] || a[al4 + 15] !== b[bl4 + 15])) return 'tcp-window';
  if (!optionsEqual(a, al4 + 20, al4 + (a[al4 + 12]! >> 4) * 4, b, bl4 + 20, bl4 + (b[bl4 + 12]! >> 4) * 4, mask)) return 'tcp-options';
  return null;
}
