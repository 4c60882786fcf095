// Counters as a typed tree: numbers at the leaves, names on the branches,
// nothing else (no configuration, no strings). The control socket's
// query-counters answers with it, and a metrics exporter can walk it without
// knowing any app: the path of names is the metric's name.

export interface CounterTree {
  readonly [name: string]: number | CounterTree;
}

/**
 * The numeric fields of a counter object (and of its nested counter objects)
 * as a tree. Methods, strings, booleans, arrays and nulls are left out, so a
 * counter class that grows a field shows up without a second list to keep.
 */
export function numericFields(o: object): CounterTree {
  const out: Record<string, number | CounterTree> = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') out[k] = v;
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const sub = numericFields(v as object);
      if (Object.keys(sub).length > 0) out[k] = sub;
    }
  }
  return out;
}

/** Every leaf as [dotted.path, value], depth first in key order. */
export function counterLeaves(t: CounterTree, prefix = ''): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, v] of Object.entries(t)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (typeof v === 'number') out.push([path, v]);
    else out.push(...counterLeaves(v, path));
  }
  return out;
}
