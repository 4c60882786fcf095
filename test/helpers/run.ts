// Runs external programs (tshark, capinfos, the netrr CLI) for tests.

import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Repository root (tests run from dist/test/…). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const NETRR_BIN = join(REPO_ROOT, 'bin/netrr.js');
/** ../shared beside the repository, as CI lays it out. */
export const SHARED_DIR = process.env.NETRR_SHARED ?? resolve(REPO_ROOT, '../shared');

export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(cmd, args, { maxBuffer: 512 * 1024 * 1024, timeout: opts.timeoutMs ?? 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
      resolvePromise({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export function netrr(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(process.execPath, [NETRR_BIN, ...args], { timeoutMs });
}

/** tshark's stderr minus its warning about running as root. */
export function tsharkStderr(s: string): string {
  return s
    .split('\n')
    .filter((l) => l !== '' && !l.includes('Running as user "root"'))
    .join('\n');
}

export function tempDir(prefix = 'netrr-test-'): { path: string; cleanup: () => void; sub: () => string } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return {
    path,
    cleanup: () => rmSync(path, { recursive: true, force: true }),
    /** A fresh subdirectory (d0, d1, …) for one test's sockets and files. */
    sub: () => {
      const d = join(path, `d${n++}`);
      mkdirSync(d);
      return d;
    },
  };
}

const liveChildren = new Set<ReturnType<typeof spawn>>();
// A test that fails before its child exits must not leave the child running:
// its pipes would keep this file's process alive until the runner's timeout.
after(() => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

/** Spawns a long-running process; returns it with collected output. Killed when the test file ends. */
export function start(cmd: string, args: string[]): { child: ReturnType<typeof spawn>; out: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out };
}
