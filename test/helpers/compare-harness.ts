// Drives a colo-compare implementation — real QEMU 7.2 or `netrr compare` —
// through the same four unix sockets (pri, sec, out, notify; the
// implementation listens, the harness connects), with one input schedule,
// and records what comes out.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNotify, parseNotify, type NotifyMessage } from '../../src/codec/xen-notify.ts';
import type { FrameEndpoint } from '../../src/io/frame-endpoint.ts';
import { createEndpoint } from '../../src/io/open-endpoint.ts';
import { Qemu } from './qemu.ts';
import { waitFor } from './raw-peer.ts';
import { NETRR_BIN } from './run.ts';

export interface CompareProps {
  vnet?: boolean;
  maxQueueSize?: number;
  compareTimeoutMs?: number;
  expiredScanCycleMs?: number;
}

export type Step =
  | { p: Uint8Array }
  | { s: Uint8Array }
  | { notify: NotifyMessage }
  | { waitMs: number };

export interface Outcome {
  released: Uint8Array[];
  notes: NotifyMessage[];
  /** Output bytes that arrived after the last step, during the settle time. */
  impl: string;
}

const ARP_PROBE = (() => {
  const f = new Uint8Array(42);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
  return f;
})();

interface Impl {
  name: string;
  stop(): Promise<void>;
  output(): string;
}

async function startQemu(dir: string, props: CompareProps): Promise<Impl> {
  const names = ['pri', 'sec', 'out', 'notify'];
  const args = ['-object', 'iothread,id=iot1'];
  for (const n of names) args.push('-chardev', `socket,id=${n},path=${dir}/${n}.sock,server=on,wait=off`);
  let obj = 'colo-compare,id=c0,primary_in=pri,secondary_in=sec,outdev=out,iothread=iot1,notify_dev=notify';
  if (props.vnet) obj += ',vnet_hdr_support=on';
  if (props.maxQueueSize !== undefined) obj += `,max_queue_size=${props.maxQueueSize}`;
  if (props.compareTimeoutMs !== undefined) obj += `,compare_timeout=${props.compareTimeoutMs}`;
  if (props.expiredScanCycleMs !== undefined) obj += `,expired_scan_cycle=${props.expiredScanCycleMs}`;
  args.push('-object', obj);
  const q = new Qemu(args);
  await q.waitForSockets(names.map((n) => `${dir}/${n}.sock`));
  return { name: 'qemu', stop: () => q.stop(), output: () => q.output };
}

async function startNetrr(dir: string, props: CompareProps): Promise<Impl> {
  const args = [NETRR_BIN, 'compare', '--mode', 'qemu'];
  for (const [opt, n] of [['--primary-in', 'pri'], ['--secondary-in', 'sec'], ['--outdev', 'out'], ['--notify-dev', 'notify']] as const) args.push(opt, `unix:${dir}/${n}.sock,server=on`);
  if (props.vnet) args.push('--vnet-hdr-support');
  if (props.maxQueueSize !== undefined) args.push('--max-queue-size', String(props.maxQueueSize));
  if (props.compareTimeoutMs !== undefined) args.push('--compare-timeout', String(props.compareTimeoutMs));
  if (props.expiredScanCycleMs !== undefined) args.push('--expired-scan-cycle', String(props.expiredScanCycleMs));
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => child.exitCode !== null || ['pri', 'sec', 'out', 'notify'].every((n) => existsSync(`${dir}/${n}.sock`)), 10_000, 'netrr compare sockets');
  if (child.exitCode !== null) throw new Error(`netrr compare exited ${child.exitCode}: ${out}`);
  return {
    name: 'netrr',
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await waitFor(() => child.exitCode !== null, 5000, 'netrr exit');
    },
  };
}

export async function runScenario(which: 'qemu' | 'netrr', dir: string, props: CompareProps, steps: Step[], settleMs = 300, pauseMs = 15): Promise<Outcome> {
  mkdirSync(dir, { recursive: true });
  const impl = which === 'qemu' ? await startQemu(dir, props) : await startNetrr(dir, props);
  const v = props.vnet ? ',vnet-hdr=on' : '';
  const eps: Record<'out' | 'notify' | 'pri' | 'sec', FrameEndpoint> = {
    out: createEndpoint(`unix:${dir}/out.sock${v}`),
    notify: createEndpoint(`unix:${dir}/notify.sock`),
    pri: createEndpoint(`unix:${dir}/pri.sock${v}`),
    sec: createEndpoint(`unix:${dir}/sec.sock${v}`),
  };
  const released: Uint8Array[] = [];
  const notes: NotifyMessage[] = [];
  try {
    for (const n of ['out', 'notify', 'pri', 'sec'] as const) {
      await eps[n].start();
      await eps[n].waitConnected(5000);
    }
    const vlen = props.vnet ? 10 : 0;
    const withVnet = (f: Uint8Array): Uint8Array => {
      if (!props.vnet) return f;
      const g = new Uint8Array(vlen + f.length);
      g.set(f, vlen);
      return g;
    };
    // Prove the out path is live (our connect() may precede the peer's accept): a primary ARP passes uncompared.
    let probes = 0;
    eps.out.onFrame = () => probes++;
    for (let i = 0; i < 50 && probes === 0; i++) {
      eps.pri.send(withVnet(ARP_PROBE), vlen);
      await new Promise((r) => setTimeout(r, 100));
    }
    if (probes === 0) throw new Error(`${which}: out never became live`);
    await new Promise((r) => setTimeout(r, 150));
    eps.out.onFrame = (f) => released.push(Uint8Array.from(f.subarray(vlen)));
    eps.notify.onFrame = (f) => notes.push(parseNotify(f));
    for (const step of steps) {
      if ('p' in step) eps.pri.send(withVnet(step.p), vlen);
      else if ('s' in step) eps.sec.send(withVnet(step.s), vlen);
      else if ('notify' in step) eps.notify.send(encodeNotify(step.notify).subarray(4), 0);
      else await new Promise((r) => setTimeout(r, step.waitMs));
      if (!('waitMs' in step) && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    await new Promise((r) => setTimeout(r, settleMs));
    return { released, notes, impl: impl.name };
  } finally {
    for (const ep of Object.values(eps)) await ep.close();
    await impl.stop();
  }
}

export function hex(frames: Uint8Array[]): string[] {
  return frames.map((f) => Buffer.from(f).toString('hex'));
}

let dirSerial = 0;
/** A short directory per run: unix socket paths must stay under 108 bytes. */
export function dirFor(base: string, impl: string): string {
  return join(base, `${dirSerial++}${impl[0]}`);
}
