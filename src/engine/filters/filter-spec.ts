// `-f KIND,prop=value,…` of `netrr chain`: parsed and validated as a whole
// before anything opens, with QEMU's property names (id, queue, status,
// position, insert; reference qemu-interop.md §3, §5, §6) and QEMU's wording
// where QEMU has one. A mistake is one line naming the filter and the property.

import { NetrrError } from '../../errors.ts';
import type { OverflowPolicy } from './epoch-buffer.ts';
import { BUFFER_DEFAULTS, type BufferConfig, type BufferMode } from './buffer-filter.ts';
import type { FilterQueue } from './filter.ts';
import type { RewriterConfig } from './rewriter-filter.ts';

/** QEMU filter-dump's default snap length. */
export const DUMP_DEFAULT_MAXLEN = 65536;

export interface DumpConfig {
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  readonly file: string;
  readonly maxlen: number;
}

export interface MirrorSpec {
  readonly kind: 'mirror';
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  readonly outdev: string;
  readonly vnetHdr: boolean;
}

export interface RedirectorSpec {
  readonly kind: 'redirector';
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  readonly indev: string | undefined;
  readonly outdev: string | undefined;
  readonly vnetHdr: boolean;
}

export interface RecordSpec {
  readonly kind: 'record';
  readonly id: string;
  readonly queue: FilterQueue;
  readonly status: boolean;
  readonly log: string;
  /** none | always | interval:MS, checked by the log writer's parser. */
  readonly sync: string | undefined;
  readonly segmentBytes: number | undefined;
  readonly order: 'log-first' | 'forward-first';
}

export interface RewriterSpec extends RewriterConfig {
  readonly kind: 'rewriter';
}

export type FilterSpec = ({ readonly kind: 'buffer' } & BufferConfig) | ({ readonly kind: 'dump' } & DumpConfig) | MirrorSpec | RedirectorSpec | RecordSpec | RewriterSpec;

const COMMON = ['id', 'queue', 'status', 'position', 'insert'];
const KIND_PROPS: Record<string, string[]> = {
  buffer: ['mode', 'limit-frames', 'limit-bytes', 'overflow', 'hard-limit-bytes', 'limit', 'interval', 'on-shutdown'],
  dump: ['file', 'maxlen'],
  mirror: ['outdev', 'vnet_hdr_support'],
  redirector: ['indev', 'outdev', 'vnet_hdr_support'],
  record: ['log', 'sync', 'segment-bytes', 'order'],
  rewriter: ['mode', 'vnet_hdr_support', 'ts-offset'],
};

interface Placement {
  position: 'head' | 'tail' | { id: string };
  insert: 'before' | 'behind';
}

function bad(name: string, message: string): never {
  throw new NetrrError('ERR_BAD_OPTION', `filter ${name}: ${message}`);
}

function uint(name: string, prop: string, v: string, positive = false): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) bad(name, `Parameter '${prop}' expects a non-negative integer, got "${v}"`);
  const n = Number(v);
  if (positive && n === 0) bad(name, `Parameter '${prop}' requires a positive value`);
  return n;
}

function oneOf<T extends string>(name: string, prop: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) bad(name, `Parameter '${prop}' expects ${allowed.map((a) => `'${a}'`).join(', ')}, got "${v}"`);
  return v as T;
}

/**
 * Splits on commas, where ",," stands for one literal comma, as in QEMU's
 * option syntax: `outdev=unix:/run/m.sock,,server=on` is one property whose
 * value is an endpoint spec with its own options.
 */
export function splitOptions(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== ',') cur += ch;
    else if (text[i + 1] === ',') {
      cur += ',';
      i++;
    } else {
      parts.push(cur);
      cur = '';
    }
  }
  parts.push(cur);
  return parts;
}

/** Parses one -f value; `index` names it when it has no id. */
function parseOne(text: string, index: number): { spec: FilterSpec; place: Placement } {
  const parts = splitOptions(text);
  const kind = parts[0] ?? '';
  if (!(kind in KIND_PROPS)) throw new NetrrError('ERR_BAD_OPTION', `filter #${index + 1}: unknown kind "${kind}" (expected ${Object.keys(KIND_PROPS).join(', ')})`);
  const props = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    const k = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? '' : p.slice(eq + 1);
    if (!COMMON.includes(k) && !KIND_PROPS[kind]!.includes(k)) throw new NetrrError('ERR_BAD_OPTION', `filter #${index + 1} (${kind}): unknown property "${k}" (expected ${[...COMMON, ...KIND_PROPS[kind]!].join(', ')})`);
    if (props.has(k)) throw new NetrrError('ERR_BAD_OPTION', `filter #${index + 1} (${kind}): property "${k}" given twice`);
    props.set(k, v);
  }
  const id = props.get('id') ?? `${kind}${index}`;
  const name = `'${id}' (${kind})`;
  if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(id)) bad(name, `Parameter 'id' expects an identifier (a letter, then letters, digits, _ . -), got "${id}"`);
  const queue = oneOf(name, 'queue', props.get('queue') ?? 'all', ['all', 'rx', 'tx'] as const);
  const status = oneOf(name, 'status', props.get('status') ?? 'on', ['on', 'off'] as const) === 'on';
  const pos = props.get('position') ?? 'tail';
  let position: Placement['position'];
  if (pos === 'head' || pos === 'tail') position = pos;
  else if (pos.startsWith('id=') && pos.length > 3) position = { id: pos.slice(3) };
  else bad(name, `Invalid parameter 'position', expects 'head', 'tail' or 'id=<id>'`);
  const insert = oneOf(name, 'insert', props.get('insert') ?? 'behind', ['before', 'behind'] as const);
  const place = { position, insert };
  if (kind === 'mirror' || kind === 'redirector') {
    const vnetHdr = oneOf(name, 'vnet_hdr_support', props.get('vnet_hdr_support') ?? 'off', ['on', 'off'] as const) === 'on';
    const outdev = props.get('outdev') || undefined;
    if (kind === 'mirror') {
      if (outdev === undefined) bad(name, "filter-mirror parameter 'outdev' cannot be empty");
      return { spec: { kind, id, queue, status, outdev, vnetHdr }, place };
    }
    const indev = props.get('indev') || undefined;
    if (indev === undefined && outdev === undefined) bad(name, "filter-redirector needs 'indev' or 'outdev' at least one property set");
    if (indev !== undefined && indev === outdev) bad(name, "'indev' and 'outdev' could not be same for filter-redirector");
    return { spec: { kind, id, queue, status, indev, outdev, vnetHdr }, place };
  }
  if (kind === 'rewriter') {
    // qemu: QEMU's behaviour, its bugs fixed; extended (the default): beyond it (src/engine/filters/rewriter-filter.ts).
    const mode = oneOf(name, 'mode', props.get('mode') ?? 'extended', ['qemu', 'extended'] as const);
    const vnetHdr = oneOf(name, 'vnet_hdr_support', props.get('vnet_hdr_support') ?? 'off', ['on', 'off'] as const) === 'on';
    if (props.has('ts-offset') && mode !== 'extended') bad(name, "Parameter 'ts-offset' applies to mode=extended only");
    const tsOffset = oneOf(name, 'ts-offset', props.get('ts-offset') ?? 'off', ['on', 'off'] as const) === 'on';
    return { spec: { kind, id, queue, status, vnetHdr, mode, tsOffset }, place };
  }
  if (kind === 'record') {
    const log = props.get('log');
    if (log === undefined || log === '') bad(name, "record filter needs 'log' property set");
    const sync = props.get('sync');
    if (sync !== undefined && !/^(none|always|interval:[1-9]\d*)$/.test(sync)) bad(name, `Parameter 'sync' expects 'none', 'always' or 'interval:MS', got "${sync}"`);
    const order = oneOf(name, 'order', props.get('order') ?? 'log-first', ['log-first', 'forward-first'] as const);
    const segmentBytes = props.has('segment-bytes') ? uint(name, 'segment-bytes', props.get('segment-bytes')!, true) : undefined;
    return { spec: { kind, id, queue, status, log, sync, segmentBytes, order }, place };
  }
  if (kind === 'dump') {
    const file = props.get('file');
    if (file === undefined || file === '') bad(name, "dump filter needs 'file' property set!");
    return { spec: { kind, id, queue, status, file, maxlen: props.has('maxlen') ? uint(name, 'maxlen', props.get('maxlen')!, true) : DUMP_DEFAULT_MAXLEN }, place };
  }
  const mode = oneOf(name, 'mode', props.get('mode') ?? BUFFER_DEFAULTS.mode, ['epochs', 'plug', 'interval'] as const) as BufferMode;
  const only: Record<string, BufferMode> = { 'limit-frames': 'epochs', 'limit-bytes': 'epochs', overflow: 'epochs', 'hard-limit-bytes': 'epochs', limit: 'plug', interval: 'interval' };
  for (const [k, m] of Object.entries(only)) if (props.has(k) && mode !== m) bad(name, `Parameter '${k}' applies to mode=${m} only`);
  let intervalUs = 0;
  if (mode === 'interval') {
    // QEMU: "Property 'filter-buffer.interval' requires a positive value".
    if (!props.has('interval')) bad(name, "Property 'filter-buffer.interval' requires a positive value");
    intervalUs = uint(name, 'interval', props.get('interval')!);
    if (intervalUs === 0) bad(name, "Property 'filter-buffer.interval' requires a positive value");
  }
  const spec: { readonly kind: 'buffer' } & BufferConfig = {
    kind: 'buffer',
    id,
    queue,
    status,
    mode,
    limitFrames: props.has('limit-frames') ? uint(name, 'limit-frames', props.get('limit-frames')!, true) : BUFFER_DEFAULTS.limitFrames,
    limitBytes: props.has('limit-bytes') ? uint(name, 'limit-bytes', props.get('limit-bytes')!, true) : BUFFER_DEFAULTS.limitBytes,
    overflow: oneOf(name, 'overflow', props.get('overflow') ?? BUFFER_DEFAULTS.overflow, ['drop-tail', 'checkpoint', 'backpressure'] as const) as OverflowPolicy,
    hardLimitBytes: props.has('hard-limit-bytes') ? uint(name, 'hard-limit-bytes', props.get('hard-limit-bytes')!, true) : BUFFER_DEFAULTS.hardLimitBytes,
    plugLimitBytes: props.has('limit') ? uint(name, 'limit', props.get('limit')!) : BUFFER_DEFAULTS.plugLimitBytes,
    intervalUs,
    onShutdown: oneOf(name, 'on-shutdown', props.get('on-shutdown') ?? BUFFER_DEFAULTS.onShutdown, ['drop', 'release'] as const),
  };
  if (spec.hardLimitBytes < spec.limitBytes) bad(name, `Parameter 'hard-limit-bytes' (${spec.hardLimitBytes}) must be at least 'limit-bytes' (${spec.limitBytes})`);
  return { spec, place };
}

/** Parses every -f in order and places each one as QEMU does (position/insert); the result is head → tail. */
export function parseFilterList(texts: readonly string[]): FilterSpec[] {
  const list: FilterSpec[] = [];
  const ids = new Set<string>();
  texts.forEach((t, i) => {
    const { spec, place } = parseOne(t, i);
    if (ids.has(spec.id)) bad(`'${spec.id}' (${spec.kind})`, `duplicate id '${spec.id}'`);
    ids.add(spec.id);
    let at: number;
    if (place.position === 'head') at = 0;
    else if (place.position === 'tail') at = list.length;
    else {
      const target = place.position.id;
      const j = list.findIndex((f) => f.id === target);
      if (j < 0) bad(`'${spec.id}' (${spec.kind})`, `filter '${target}' not found`);
      at = place.insert === 'before' ? j : j + 1;
    }
    list.splice(at, 0, spec);
  });
  return list;
}
