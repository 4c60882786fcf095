// Text forms of addresses, matching what tshark prints (lower-case hex,
// RFC 5952 zero compression, BIND-style embedded IPv4 for ::ffff:a.b.c.d).

import { u16be } from '../codec/bytes.ts';

export function formatMac(b: Uint8Array, o: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    if (i > 0) s += ':';
    s += (b[o + i]! < 16 ? '0' : '') + b[o + i]!.toString(16);
  }
  return s;
}

export function formatIpv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

export function formatIpv6(b: Uint8Array, o: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(u16be(b, o + 2 * i));
  // Longest run of zero words (first one wins ties), used only if ≥ 2 long.
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && w[i] === 0) {
      if (curBase < 0) curBase = i;
    } else if (curBase >= 0) {
      const len = i - curBase;
      if (len > bestLen) {
        bestBase = curBase;
        bestLen = len;
      }
      curBase = -1;
    }
  }
  if (bestLen < 2) bestBase = -1;
  const embedV4 = bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff));
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i > 0) s += ':';
    if (i === 6 && embedV4) {
      s += formatIpv4(b, o + 12);
      break;
    }
    s += w[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) s += ':';
  return s;
}

export function hex(n: number, width: number): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}
