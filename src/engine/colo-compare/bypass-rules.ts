// Bypass rules: n-tuple filters whose traffic is released uncompared (the
// "passthrough" QEMU's users asked for and upstream never merged, reference
// users-and-checklist.md item 6). Every bypassed frame is counted per rule.
//   proto=udp,src=10.0.0.0/8,sport=123,dst=fd00::/64,dport=1000-2000
// Fields are optional; an empty rule matches nothing (refused).

import { NetrrError } from '../../errors.ts';
import type { ConnKey } from './compare-packet.ts';

export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

export interface BypassRule {
  readonly text: string;
  readonly proto?: number;
  readonly src?: Cidr;
  readonly dst?: Cidr;
  readonly sport?: readonly [number, number];
  readonly dport?: readonly [number, number];
  /** Frames matched (primary released uncompared + secondary dropped). */
  hits: number;
}

const PROTO_NAMES: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132, gre: 47, esp: 50, ah: 51 };

function bad(text: string, why: string): never {
  throw new NetrrError('ERR_BAD_OPTION', `bad bypass rule "${text}": ${why}`);
}

function parseV4(s: string): Uint8Array | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (m === null) return null;
  const b = m.slice(1).map(Number);
  return b.every((x) => x <= 255) ? Uint8Array.from(b) : null;
}

function parseV6(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:]+$/.test(s) || s.split('::').length > 2) return null;
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined ? [] : tail === '' ? [] : tail.split(':');
  const missing = 8 - h.length - t.length;
  if ((tail === undefined && missing !== 0) || missing < 0) return null;
  const words = [...h, ...Array(missing).fill('0'), ...t];
  if (words.some((w) => w.length === 0 || w.length > 4)) return null;
  return Uint8Array.from(words.flatMap((w) => [parseInt(w, 16) >> 8, parseInt(w, 16) & 0xff]));
}

export function parseCidr(text: string, value: string): Cidr {
  const [addr = '', pfx] = value.split('/');
  const v4 = parseV4(addr);
  const bytes = v4 ?? parseV6(addr);
  if (bytes === null) bad(text, `"${addr}" is not an IPv4 or IPv6 address`);
  const max = v4 !== null ? 32 : 128;
  const prefix = pfx === undefined ? max : /^\d+$/.test(pfx) ? Number(pfx) : -1;
  if (prefix < 0 || prefix > max) bad(text, `prefix "/${pfx}" is out of range`);
  return { family: v4 !== null ? 4 : 6, bytes, prefix };
}

function parsePorts(text: string, value: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(value);
  if (m === null) bad(text, `port "${value}" is not N or N-M`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi > 65535 || lo > hi) bad(text, `port range "${value}" is invalid`);
  return [lo, hi];
}

export function parseBypassRule(text: string): BypassRule {
  const rule: { -readonly [K in keyof BypassRule]: BypassRule[K] } = { text, hits: 0 };
  let fields = 0;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) bad(text, `"${part}" is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    fields++;
    if (key === 'proto') {
      const n = PROTO_NAMES[value.toLowerCase()] ?? (/^\d+$/.test(value) && Number(value) < 256 ? Number(value) : undefined);
      if (n === undefined) bad(text, `unknown protocol "${value}"`);
      rule.proto = n;
    } else if (key === 'src') rule.src = parseCidr(text, value);
    else if (key === 'dst') rule.dst = parseCidr(text, value);
    else if (key === 'sport') rule.sport = parsePorts(text, value);
    else if (key === 'dport') rule.dport = parsePorts(text, value);
    else bad(text, `unknown field "${key}" (proto, src, dst, sport, dport)`);
  }
  if (fields === 0) bad(text, 'empty rule');
  return rule;
}

function inCidr(c: Cidr, family: number, addr: Uint8Array): boolean {
  if (c.family !== family) return false;
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

/** The first rule matching a classified frame, or null. */
export function matchBypass(rules: readonly BypassRule[], k: ConnKey): BypassRule | null {
  for (const r of rules) {
    if (r.proto !== undefined && r.proto !== k.proto) continue;
    if (r.src !== undefined && !inCidr(r.src, k.family, k.src)) continue;
    if (r.dst !== undefined && !inCidr(r.dst, k.family, k.dst)) continue;
    if (r.sport !== undefined && (k.sport < r.sport[0] || k.sport > r.sport[1])) continue;
    if (r.dport !== undefined && (k.dport < r.dport[0] || k.dport > r.dport[1])) continue;
    return r;
  }
  return null;
}
