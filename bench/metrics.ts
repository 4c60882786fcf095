// The cost of one /metrics scrape with 100 instances (50 compare proxies and
// 50 chains with a buffer, their real counter trees): the text written
// directly from the trees (src/app/live/metrics-text.ts, what netrr serves)
// against prom-client 15, whose gauges are set from the same trees in a
// collect() at scrape time. The anchor is prom-client, in the same run.
// Run: node dist/bench/metrics.js

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gauge, Registry } from 'prom-client';
import { Chain } from '../src/app/chain.ts';
import { CompareProxy } from '../src/app/compare-proxy.ts';
import { metricName, prometheusText } from '../src/app/live/metrics-text.ts';
import { compareConfig } from '../src/engine/colo-compare/compare-engine.ts';
import { type CounterTree, counterLeaves } from '../src/engine/counter-tree.ts';
import { parseFilterList } from '../src/engine/filters/filter-spec.ts';
import { row, timeIt, timeItAsync } from './bench-util.ts';

const INSTANCES = 100;
const dir = mkdtempSync(join(tmpdir(), 'netrr-metricsbench-'));
const apps: { name: string; tree: () => CounterTree }[] = [];
for (let i = 0; i < INSTANCES / 2; i++) {
  const c = new CompareProxy({ primaryIn: `unix:${dir}/p${i},server=on`, secondaryIn: `unix:${dir}/s${i},server=on`, outdev: `unix:${dir}/o${i},server=on`, vnetHdrSupport: false, config: compareConfig() });
  const ch = new Chain({ guest: `unix:${dir}/g${i},server=on`, network: `unix:${dir}/n${i},server=on`, filters: parseFilterList(['buffer,id=b,mode=epochs']) });
  // The filters exist once the chain has started (its sockets listen in a scratch directory, unused).
  await ch.start();
  await ch.stop(0);
  apps.push({ name: `colo${i}`, tree: () => c.counterTree() }, { name: `buf${i}`, tree: () => ch.counterTree() });
}

const direct = (): string => prometheusText(apps.map((a) => ({ name: a.name, tree: a.tree() })));
const text = direct();
const leaves = apps.reduce((n, a) => n + counterLeaves(a.tree()).length, 0);

const registry = new Registry();
const gauges = new Map<string, Gauge>();
for (const a of apps) {
  for (const [path] of counterLeaves(a.tree())) {
    const m = metricName(path);
    if (!gauges.has(m)) gauges.set(m, new Gauge({ name: m, help: path, labelNames: ['instance'], registers: [registry] }));
  }
}
// prom-client's way to read plain counters at scrape time: set every gauge from the trees, then render.
const promClient = async (): Promise<string> => {
  for (const a of apps) for (const [path, v] of counterLeaves(a.tree())) gauges.get(metricName(path))!.set({ instance: a.name }, v);
  return registry.metrics();
};
const promText = await promClient();

console.log(`/metrics with ${INSTANCES} instances (${leaves} samples, ${gauges.size} metric families)`);
console.log(row(['writer', 'ms per scrape', 'bytes']));
const tDirect = timeIt(direct, 20, 5);
const tProm = await timeItAsync(async () => void (await promClient()), 20, 5);
console.log(row(['prom-client 15 (anchor)', (tProm * 1000).toFixed(2), promText.length]));
console.log(row(['direct from the counter trees', (tDirect * 1000).toFixed(2), text.length]));
console.log(`direct / prom-client: ${(tDirect / tProm).toFixed(2)}`);
rmSync(dir, { recursive: true, force: true });
