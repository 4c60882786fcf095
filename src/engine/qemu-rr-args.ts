// QEMU record/replay command lines (reference qemu-7.2-observed.md "QEMU's own
// record/replay with networking", replay-logs.md §11.3): netrr adds
// `-icount shift=auto,rr=…,rrfile=…` and one filter-replay per netdev (in
// netdev order: the filter index in the log is the creation order), sets
// tx=timer on virtio-net devices (the default tx=bh hung replay here), and
// keeps what replay must match: netdevs and network filters. QEMU hangs
// silently when they differ between record and replay, so netrr refuses.

import { NetrrError } from '../errors.ts';

export interface RrShape {
  /** `-netdev TYPE,id=ID` in order. */
  readonly netdevs: readonly { readonly type: string; readonly id: string }[];
  /** `-object filter-*` (and other net filters) as written, in order. */
  readonly filters: readonly string[];
}

function optValue(opts: string, key: string): string | undefined {
  for (const part of opts.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq) === key) return part.slice(eq + 1);
  }
  return undefined;
}

/** Reads the network shape of a QEMU argument list; refuses what record/replay cannot handle. */
export function rrShape(args: readonly string[]): RrShape {
  const netdevs: { type: string; id: string }[] = [];
  const filters: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[i + 1];
    if (a === '-nic' || a === '-net') {
      throw new NetrrError('ERR_BAD_OPTION', `${a} is not supported under record/replay: use -netdev TYPE,id=ID with -device …,netdev=ID so that a filter-replay can be attached`);
    }
    if (a === '-netdev' && v !== undefined) {
      const type = v.split(',')[0]!;
      const id = optValue(v, 'id');
      if (id === undefined) throw new NetrrError('ERR_BAD_OPTION', `-netdev ${v} has no id=`);
      if (type !== 'hubport') netdevs.push({ type, id });
      i++;
    } else if (a === '-object' && v !== undefined && /^(filter-|colo-compare)/.test(v)) {
      filters.push(v);
      i++;
    }
  }
  return { netdevs, filters };
}

/** The argument list QEMU is started with for record or replay. */
export function rrArgs(args: readonly string[], mode: 'record' | 'replay', rrfile: string): string[] {
  const shape = rrShape(args);
  const out: string[] = [];
  let icount = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = args[i + 1];
    if (a === '-icount' && v !== undefined) {
      if (/(^|,)rr=/.test(v)) throw new NetrrError('ERR_BAD_OPTION', '-icount already sets rr=: netrr adds rr= and rrfile= itself');
      out.push(a, `${v},rr=${mode},rrfile=${rrfile}`);
      icount = true;
      i++;
    } else if (a === '-device' && v !== undefined && /^virtio-net/.test(v) && optValue(v, 'tx') === undefined) {
      out.push(a, `${v},tx=timer`);
      i++;
    } else out.push(a);
  }
  if (!icount) out.push('-icount', `shift=auto,rr=${mode},rrfile=${rrfile}`);
  shape.netdevs.forEach((n, k) => out.push('-object', `filter-replay,id=netrr-rr${k},netdev=${n.id}`));
  return out;
}

/** Differences between a recording's shape and a replay's, in words; empty when they match. */
export function rrMismatch(recorded: RrShape, replay: RrShape): string[] {
  const out: string[] = [];
  const fmt = (n: { type: string; id: string }): string => `${n.type} id=${n.id}`;
  const a = recorded.netdevs.map(fmt);
  const b = replay.netdevs.map(fmt);
  if (a.join('|') !== b.join('|')) out.push(`netdevs differ: recorded [${a.join(', ')}], replay [${b.join(', ')}]`);
  for (const f of recorded.filters) if (!replay.filters.includes(f)) out.push(`filter present in the recording but not in the replay: -object ${f}`);
  for (const f of replay.filters) if (!recorded.filters.includes(f)) out.push(`filter present in the replay but not in the recording: -object ${f}`);
  if (out.length === 0 && recorded.filters.join('|') !== replay.filters.join('|')) out.push('network filters are in a different order (their order is part of the recording)');
  return out;
}
