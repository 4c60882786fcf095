// netrr qemu-rr record|replay --log DIR -- QEMU-ARGS…

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { NetrrError } from '../errors.ts';
import { QEMU_LOG_HEADER_BYTES, parseQemuLogHeader } from '../codec/qemu-replay-log.ts';
import { type RrShape, rrArgs, rrMismatch, rrShape } from '../engine/qemu-rr-args.ts';
import { VERSION } from './version.ts';

const LOG_NAME = 'replay.bin';
const CMDLINE_NAME = 'cmdline.json';

interface SavedCommandLine {
  netrr: string;
  qemu: string;
  args: string[];
  shape: RrShape;
  recordedAt: string;
}

function runQemu(qemu: string, args: string[], timeoutSec: number | undefined): Promise<{ code: number | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: 'inherit' });
    let timedOut = false;
    const t = timeoutSec === undefined ? null : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutSec * 1000);
    const stop = (): void => void child.kill('SIGTERM');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    child.on('exit', (code) => {
      if (t !== null) clearTimeout(t);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve({ code, timedOut });
    });
    child.on('error', (e) => {
      resolve({ code: 127, timedOut: false });
      process.stderr.write(`netrr qemu-rr: cannot start ${qemu}: ${e.message}\n`);
    });
  });
}

async function headerOf(file: string): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const b = new Uint8Array(QEMU_LOG_HEADER_BYTES);
    const { bytesRead } = await fh.read(b, 0, b.length, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function qemuRrCommand(mode: 'record' | 'replay', o: { log: string; qemu?: string; timeout?: number }, qemuArgs: string[]): Promise<number> {
  const qemu = o.qemu ?? 'qemu-system-x86_64';
  if (qemuArgs.length === 0) throw new NetrrError('ERR_USAGE', 'give QEMU\'s arguments after --, e.g. netrr qemu-rr record --log DIR -- -kernel … -netdev user,id=n1 -device virtio-net-pci,netdev=n1');
  const shape = rrShape(qemuArgs);
  const rrfile = join(o.log, LOG_NAME);
  if (mode === 'record') {
    mkdirSync(o.log, { recursive: true });
    const saved: SavedCommandLine = { netrr: VERSION, qemu, args: qemuArgs, shape, recordedAt: new Date().toISOString() };
    writeFileSync(join(o.log, CMDLINE_NAME), `${JSON.stringify(saved, null, 2)}\n`);
    const r = await runQemu(qemu, rrArgs(qemuArgs, 'record', rrfile), o.timeout);
    try {
      parseQemuLogHeader(await headerOf(rrfile));
    } catch (e) {
      process.stderr.write(`netrr qemu-rr: the recording did not end cleanly: ${(e as Error).message}\n`);
      return r.code === 0 ? 1 : (r.code ?? 1);
    }
    return r.code ?? 1;
  }
  const cmdPath = join(o.log, CMDLINE_NAME);
  if (!existsSync(cmdPath)) throw new NetrrError('ERR_FILE_NOT_FOUND', `${cmdPath}: no saved command line (record with netrr qemu-rr record --log ${o.log})`);
  const saved = JSON.parse(readFileSync(cmdPath, 'utf8')) as SavedCommandLine;
  const diff = rrMismatch(saved.shape, shape);
  if (diff.length > 0) {
    throw new NetrrError('ERR_BAD_OPTION', `refusing to replay: the command line differs from the recording's in what replay must match (QEMU would hang without a word): ${diff.join('; ')}`);
  }
  parseQemuLogHeader(await headerOf(rrfile)); // a killed recording cannot be replayed: say so now
  const r = await runQemu(qemu, rrArgs(qemuArgs, 'replay', rrfile), o.timeout);
  if (r.timedOut) throw new NetrrError('ERR_IO', `replay did not finish within ${o.timeout} s (QEMU killed); a replay that stalls usually means a device or filter differs from the recording`);
  return r.code ?? 1;
}
