// Starts a guest-less QEMU 7.2 (Debian's qemu-system-x86) for interop tests.

import { QEMU_BINARY, QEMU_NO_MACHINE, QemuProcess, slirpWorldArgs as slirpWorld } from '../../src/io/qemu-process.ts';

export const QEMU_BIN = QEMU_BINARY;
/** The machine-less base every interop test starts from. */
export const QEMU_BASE_ARGS = QEMU_NO_MACHINE;

/**
 * A guest-less QEMU whose slirp (user networking, optionally serving TFTP from
 * `tftpDir`) is reachable on a `-netdev stream` server socket at `sock`,
 * through a hub: the world a recorded guest talks to.
 */
export function slirpWorldArgs(sock: string, tftpDir?: string): string[] {
  return slirpWorld(sock, tftpDir === undefined ? '' : `tftp=${tftpDir}`);
}

/** A guest-less QEMU (src/io/qemu-process.ts) on QEMU_BASE_ARGS plus `args`. */
export class Qemu extends QemuProcess {
  constructor(args: string[]) {
    super([...QEMU_BASE_ARGS, ...args]);
  }
}
