// Starts a guest-less QEMU 7.2 (Debian's qemu-system-x86) for interop tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from './raw-peer.ts';

export const QEMU_BIN = process.env.NETRR_QEMU ?? 'qemu-system-x86_64';
/** The machine-less base every interop test starts from. */
export const QEMU_BASE_ARGS = ['-machine', 'none', '-nodefaults', '-nographic', '-display', 'none'];

/**
 * A guest-less QEMU whose slirp (user networking, optionally serving TFTP from
 * `tftpDir`) is reachable on a `-netdev stream` server socket at `sock`,
 * through a hub: the world a recorded guest talks to.
 */
export function slirpWorldArgs(sock: string, tftpDir?: string): string[] {
  return ['-netdev', tftpDir === undefined ? 'user,id=u' : `user,id=u,tftp=${tftpDir}`, '-netdev', 'hubport,id=h0,hubid=0,netdev=u', '-netdev', `stream,id=s,server=on,addr.type=unix,addr.path=${sock}`, '-netdev', 'hubport,id=h1,hubid=0,netdev=s'];
}

export class Qemu {
  readonly child: ChildProcess;
  output = '';
  exited = false;
  exitCode: number | null = null;

  constructor(args: string[]) {
    this.child = spawn(QEMU_BIN, [...QEMU_BASE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.on('exit', (code) => {
      this.exited = true;
      this.exitCode = code;
    });
  }

  /** Waits until every unix socket path exists (QEMU listening) or QEMU dies. */
  async waitForSockets(paths: string[], timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.exited || paths.every((p) => existsSync(p)), timeoutMs, `QEMU sockets ${paths.join(', ')}`);
    if (this.exited) throw new Error(`QEMU exited (${this.exitCode}): ${this.output}`);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await waitFor(() => this.exited, 5000, 'QEMU exit');
    clearTimeout(t);
  }
}
