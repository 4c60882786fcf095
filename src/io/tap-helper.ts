// Starts the native tap helper (native/netrr-tap.c) for a tap: spec and hands
// back its frame socket. Node cannot issue TUNSETIFF or poll a character
// device, so the helper opens the tap (inside the spec's network namespace)
// and relays frames over fd 3, one end of the socketpair libuv creates for a
// 'pipe' stdio slot, in QEMU's framing. To Node it is an ordinary stream.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { NetrrError } from '../errors.ts';
import type { TapSpec } from './endpoint-spec.ts';

/** Largest record the helper relays (native/netrr-tap.c MAX_RECORD_BYTES: a 64 KiB frame plus a vnet header). */
export const TAP_MAX_RECORD_BYTES = 65536 + 64;
/** How long the helper may take to open the tap. */
export const TAP_READY_TIMEOUT_MS = 5000;
/** Helper stderr kept for error messages. */
const STDERR_KEEP_BYTES = 4096;

export interface TapHelperHooks {
  /** The kernel refused a frame the helper wrote (reason: tap-refused, tap-down). */
  onDrop: (reason: string) => void;
  /** The helper exited after it was ready; status and what it printed on stderr. */
  onExit: (status: number | null, stderr: string) => void;
}

export interface TapHelper {
  readonly socket: net.Socket;
  readonly child: ChildProcess;
}

/** The helper binary: $NETRR_TAP_HELPER, or dist/native/netrr-tap built by scripts/build-native.sh. */
export function tapHelperPath(): string {
  const fromEnv = process.env.NETRR_TAP_HELPER;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  // From dist/src/io/ the binary is ../../native/; from src/io/ (run unbuilt) it is ../../dist/native/.
  for (const rel of ['../../native/netrr-tap', '../../dist/native/netrr-tap']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new NetrrError('ERR_TAP_HELPER', 'the tap helper is not built: run bash scripts/build-native.sh (needs a C compiler)');
}

export function tapHelperArgs(spec: TapSpec): string[] {
  const args = [spec.ifname];
  if (spec.netns !== undefined) args.push('--netns', spec.netns);
  if (spec.vnetHdr) args.push('--vnet-hdr', '--vnet-hdr-len', String(spec.vnetHdrLen));
  return args;
}

export function startTapHelper(spec: TapSpec, hooks: TapHelperHooks): Promise<TapHelper> {
  return new Promise((resolve, reject) => {
    let path: string;
    try {
      path = tapHelperPath();
    } catch (e) {
      reject(e);
      return;
    }
    const child = spawn(path, tapHelperArgs(spec), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const socket = child.stdio[3] as net.Socket;
    let ready = false;
    let stderr = '';
    let lineBuf = '';
    const fail = (e: NetrrError): void => {
      clearTimeout(timer);
      socket.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      reject(e);
    };
    const timer = setTimeout(() => fail(new NetrrError('ERR_TAP_OPEN', `tap ${spec.ifname}: the helper did not open it within ${TAP_READY_TIMEOUT_MS} ms`)), TAP_READY_TIMEOUT_MS);
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < STDERR_KEEP_BYTES) stderr += d.toString('utf8').slice(0, STDERR_KEEP_BYTES - stderr.length);
    });
    child.stdout?.on('data', (d: Buffer) => {
      lineBuf += d.toString('utf8');
      let nl: number;
      while ((nl = lineBuf.indexOf('\n')) >= 0) {
        const line = lineBuf.slice(0, nl);
        lineBuf = lineBuf.slice(nl + 1);
        if (!ready && line.startsWith('ready ')) {
          ready = true;
          clearTimeout(timer);
          resolve({ socket, child });
        } else if (line.startsWith('drop ')) hooks.onDrop(line.slice(5));
      }
    });
    child.once('error', (e) => fail(new NetrrError('ERR_TAP_HELPER', `tap helper ${path}: ${e.message}`, { cause: e })));
    child.once('exit', (status) => {
      const why = stderr.trim().replace(/^netrr-tap: /, '');
      if (!ready) fail(new NetrrError('ERR_TAP_OPEN', `tap ${spec.ifname}${spec.netns !== undefined ? ` (netns ${spec.netns})` : ''}: ${why !== '' ? why : `helper exited with status ${status}`}`));
      else hooks.onExit(status, why);
    });
  });
}
