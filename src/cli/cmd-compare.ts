// netrr compare: a drop-in for QEMU's colo-compare object, with its property names.

import { NetrrError } from '../errors.ts';
import { CompareProxy } from '../app/compare-proxy.ts';
import { type CompareConfig, type CompareMode, compareConfig } from '../engine/colo-compare/compare-engine.ts';
import { parseBypassRule } from '../engine/colo-compare/bypass-rules.ts';
import { parseNormalizers } from '../engine/colo-compare/normalizers.ts';
import { runService } from './service.ts';

export interface CompareCliOptions {
  primaryIn: string;
  secondaryIn: string;
  outdev: string;
  notifyDev?: string;
  qmp?: string;
  vnetHdrSupport?: boolean;
  compareTimeout?: number;
  expiredScanCycle?: number;
  maxQueueSize?: number;
  maxConnections?: number;
  maxQueuedBytes?: number;
  mode?: string;
  report?: string;
  reportPcap?: string;
  control?: string;
  normalize?: string;
  bypass?: string[];
}

/** The compare proxy the options describe (validated; nothing opens yet). */
export function compareApp(o: CompareCliOptions): CompareProxy {
  // colo-compare's own checks: distinct devices, positive timings (reference colo-proxy.md §8.1).
  const devs = [o.primaryIn, o.secondaryIn, o.outdev, ...(o.notifyDev !== undefined ? [o.notifyDev] : [])];
  if (new Set(devs).size !== devs.length) throw new NetrrError('ERR_BAD_OPTION', "'primary-in', 'secondary-in', 'outdev' and 'notify-dev' must all differ");
  for (const [name, v] of [['--compare-timeout', o.compareTimeout], ['--expired-scan-cycle', o.expiredScanCycle], ['--max-queue-size', o.maxQueueSize], ['--max-connections', o.maxConnections], ['--max-queued-bytes', o.maxQueuedBytes]] as const) {
    if (v !== undefined && v <= 0) throw new NetrrError('ERR_BAD_OPTION', `${name} requires a positive value`);
  }
  const mode = (o.mode ?? 'extended') as CompareMode;
  const partial: { -readonly [K in keyof CompareConfig]?: CompareConfig[K] } = { mode };
  if (o.compareTimeout !== undefined) partial.compareTimeoutMs = o.compareTimeout;
  if (o.expiredScanCycle !== undefined) partial.expiredScanCycleMs = o.expiredScanCycle;
  if (o.maxQueueSize !== undefined) partial.maxQueueSize = o.maxQueueSize;
  if (o.maxConnections !== undefined) partial.maxConnections = o.maxConnections;
  if (o.maxQueuedBytes !== undefined) partial.maxQueuedBytes = o.maxQueuedBytes;
  if (o.normalize !== undefined) partial.normalizers = parseNormalizers(o.normalize);
  partial.bypass = (o.bypass ?? []).map(parseBypassRule);
  if (mode === 'qemu' && (partial.bypass.length > 0 || o.normalize !== undefined)) {
    throw new NetrrError('ERR_BAD_OPTION', '--bypass and --normalize apply to --mode extended only');
  }
  return new CompareProxy({
    primaryIn: o.primaryIn,
    secondaryIn: o.secondaryIn,
    outdev: o.outdev,
    vnetHdrSupport: o.vnetHdrSupport === true,
    config: compareConfig(partial),
    ...(o.notifyDev !== undefined ? { notifyDev: o.notifyDev } : {}),
    ...(o.qmp !== undefined ? { qmp: o.qmp } : {}),
    ...(o.report !== undefined ? { report: o.report } : {}),
    ...(o.reportPcap !== undefined ? { reportPcap: o.reportPcap } : {}),
  });
}

export async function compareCommand(o: CompareCliOptions): Promise<void> {
  await runService(compareApp(o), o.control !== undefined ? { control: o.control } : {});
}
