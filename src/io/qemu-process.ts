// A QEMU child process: its output kept, waits for text or for its sockets,
// and a stop that escalates from SIGTERM to SIGKILL. For the demo's guests
// and its guest-less slirp world.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { NetrrError } from '../errors.ts';

/** QEMU's binary: NETRR_QEMU, else qemu-system-x86_64 on the PATH. */
export const QEMU_BINARY = process.env.NETRR_QEMU ?? 'qemu-system-x86_64';
/** A guest-less QEMU: no machine, no devices, no display. */
export const QEMU_NO_MACHINE = ['-machine', 'none', '-nodefaults', '-nographic', '-display', 'none'];
const POLL_MS = 20;
const STOP_GRACE_MS = 3000;

/** QEMU's slirp bridged to a stream socket through a hub (reference qemu-7.2-observed.md, "An outside world without a guest"). */
export function slirpWorldArgs(sock: string, userOptions = ''): string[] {
  return ['-netdev', `user,id=u${userOptions !== '' ? `,${userOptions}` : ''}`, '-netdev', 'hubport,id=h0,hubid=0,netdev=u', '-netdev', `stream,id=s,server=on,addr.type=unix,addr.path=${sock}`, '-netdev', 'hubport,id=h1,hubid=0,netdev=s'];
}

export class QemuProcess {
  readonly child: ChildProcess;
  output = '';
  exitCode: number | null = null;
  #exited = false;
  readonly #done: Promise<void>;

  constructor(args: readonly string[]) {
    this.child = spawn(QEMU_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.#done = new Promise((resolve) => {
      this.child.once('error', (e) => {
        this.output += String(e);
        this.#exited = true;
        resolve();
      });
      this.child.once('exit', (code) => {
        this.exitCode = code;
        this.#exited = true;
        resolve();
      });
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Resolves once `ready()` holds; rejects (with QEMU's output) when QEMU exits first or after timeoutMs. */
  async until(ready: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.#exited) throw new NetrrError('ERR_IO', `QEMU exited (${this.exitCode}) before ${what}: ${this.output.trim().slice(-400)}`);
      if (Date.now() > deadline) throw new NetrrError('ERR_IO', `QEMU: no ${what} in ${timeoutMs / 1000} s: ${this.output.trim().slice(-400)}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  waitForSockets(paths: readonly string[], timeoutMs = 10_000): Promise<void> {
    return this.until(() => paths.every((p) => existsSync(p)), `sockets ${paths.join(', ')}`, timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.#done;
    clearTimeout(t);
  }
}
