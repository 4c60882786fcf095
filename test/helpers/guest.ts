// Boots the tiny test guest (scripts/build-guest.sh) under TCG.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NETRR_BIN, REPO_ROOT, start } from './run.ts';
import { waitFor } from './raw-peer.ts';

export const GUEST_DIR = join(REPO_ROOT, '.cache/guest');

export interface GuestRun {
  child: ChildProcess;
  serial: () => string;
  done: Promise<number | null>;
}

/** Starts the guest with `netrr.task=TASK` and extra QEMU arguments (netdev, filters…). */
export function bootGuest(task: string, qemuArgs: string[], cmdline = ''): GuestRun {
  const args = [
    '-accel', 'tcg', '-M', 'pc', '-m', '256M', '-nographic', '-nodefaults', '-serial', 'stdio', '-no-reboot',
    '-kernel', join(GUEST_DIR, 'vmlinuz'), '-initrd', join(GUEST_DIR, 'initrd.gz'),
    '-append', `console=ttyS0 quiet panic=-1 netrr.task=${task} ${cmdline}`,
    ...qemuArgs,
  ];
  const child = spawn(process.env.NETRR_QEMU ?? 'qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, serial: () => out, done };
}

/** Waits for the task's end marker; kills the guest after timeoutMs. */
export async function waitTask(g: GuestRun, timeoutMs = 60_000): Promise<string> {
  try {
    await waitFor(() => g.serial().includes('NETRR-TASK-END') || g.child.exitCode !== null, timeoutMs, 'guest task');
  } finally {
    if (g.child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 500));
      g.child.kill('SIGKILL');
    }
  }
  return g.serial();
}

/** The virtio-net + stream netdev arguments that connect the guest to a unix socket. */
export function streamNic(sock: string): string[] {
  return ['-netdev', `stream,id=n1,server=off,addr.type=unix,addr.path=${sock}`, '-device', 'virtio-net-pci,netdev=n1,romfile='];
}

/**
 * Records a boot of the guest (task, kernel command line) through `netrr
 * record` in front of `upstream`, into `log`; `sock` is the recorder's guest
 * socket. Resolves with the guest's console once the task ended and the
 * recorder closed its log.
 */
export async function recordGuest(o: { log: string; sock: string; upstream: string; task: string; cmdline: string; timeoutMs?: number }): Promise<string> {
  const rec = start(process.execPath, [NETRR_BIN, 'record', '--guest', `unix:${o.sock},server=on`, '--upstream', o.upstream, '--log', o.log]);
  await waitFor(() => existsSync(o.sock) || rec.child.exitCode !== null, 10_000, 'recorder socket');
  const serial = await waitTask(bootGuest(o.task, streamNic(o.sock), o.cmdline), o.timeoutMs ?? 90_000);
  rec.child.kill('SIGTERM');
  await waitFor(() => rec.child.exitCode !== null, 10_000, 'recorder exit');
  return serial;
}

/**
 * `netrr replay --log LOG` serving a fresh boot of the guest (task, kernel
 * command line) on `sock`; resolves with the guest's console and replay's
 * output and exit status once both are done.
 */
export async function replayIntoGuest(o: { log: string; sock: string; task: string; cmdline: string; args?: string[]; timeoutMs?: number }): Promise<{ serial: string; out: string; code: number | null }> {
  const rp = start(process.execPath, [NETRR_BIN, 'replay', '--log', o.log, '--guest', `unix:${o.sock},server=on`, ...(o.args ?? [])]);
  await waitFor(() => existsSync(o.sock) || rp.child.exitCode !== null, 10_000, 'replay socket');
  const g = bootGuest(o.task, streamNic(o.sock), o.cmdline);
  const serial = await waitTask(g, o.timeoutMs ?? 90_000);
  await waitFor(() => rp.child.exitCode !== null, 20_000, 'replay exit');
  return { serial, out: rp.out(), code: rp.child.exitCode };
}

/**
 * replayIntoGuest, and once more with a fresh boot if the first replay did not
 * end MATCHED, saying so (the first run's summary, divergence and console
 * tail) through `say`. Replays of large transfers into a TCG guest on a loaded
 * machine still diverge now and then (issue 11's closing note: two
 * intermittent stalls seen in CI, one explained and fixed, the cause of the
 * other not yet found); a second failure fails the test.
 */
export async function replayIntoGuestTwice(say: (line: string) => void, label: string, o: Parameters<typeof replayIntoGuest>[0]): Promise<Awaited<ReturnType<typeof replayIntoGuest>>> {
  const first = await replayIntoGuest(o);
  if (first.code === 0) return first;
  const lines = first.out.split('\n').filter((l) => /divergence|DIVERGED|GUEST-DISCONNECTED/.test(l));
  say(`INTERMITTENT: ${label} replay exited ${first.code} on the first boot; replaying into a second one. ${lines.join(' | ').slice(0, 3000)} | console: ${first.serial.split('\n').slice(-6).join(' / ')}`);
  return replayIntoGuest({ ...o, sock: `${o.sock}.2` });
}
