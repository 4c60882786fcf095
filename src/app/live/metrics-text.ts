// Prometheus text exposition (format 0.0.4) of every instance's counter tree:
// the path of names is the metric's name, snake_cased under `netrr_`, and the
// instance is a label (`netrr_endpoints_primary_in_rx_frames{instance="compare"} 12`).
// Counters are read when scraped; nothing is counted for the exporter on the
// hot path. Written directly rather than through prom-client: bench/metrics.ts,
// 100 instances (9 950 samples), 24 ms per scrape against prom-client's 34 ms
// in the same run, and no registry to keep in step with the trees.

import { type CounterTree, counterLeaves } from '../../engine/counter-tree.ts';

/** A dotted counter path as a Prometheus metric name: netrr_ + snake_case, anything else an underscore. */
export function metricName(path: string): string {
  const snake = path.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9_]+/g, '_').toLowerCase();
  return `netrr_${snake.replace(/^_+|_+$/g, '')}`;
}

/** A label value escaped as the format says (backslash, quote, newline). */
export function labelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Every instance's leaves, one family per metric name (its samples together), instances in the given order. */
export function prometheusText(instances: readonly { name: string; tree: CounterTree }[]): string {
  const families = new Map<string, string[]>();
  for (const { name, tree } of instances) {
    const label = `{instance="${labelValue(name)}"}`;
    for (const [path, value] of counterLeaves(tree)) {
      if (!Number.isFinite(value)) continue;
      const m = metricName(path);
      let lines = families.get(m);
      if (lines === undefined) families.set(m, (lines = []));
      lines.push(`${m}${label} ${value}`);
    }
  }
  let out = '';
  for (const [m, lines] of families) out += `# TYPE ${m} untyped\n${lines.join('\n')}\n`;
  return out;
}
