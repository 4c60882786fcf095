// The daemon's operator log, through pino: JSON lines when stderr is not a
// terminal (for journald, a collector, jq), readable lines when it is. Never
// one line per packet: callers log state changes and the LineLimiter's
// rate-limited summaries.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
/** pino's own keys, not shown again as key=value on a readable line. */
const OWN = new Set(['level', 'time', 'name', 'msg', 'pid', 'hostname']);

/** One pino JSON line as a readable one: `HH:MM:SS.mmm name level msg key=value…` (info's level left out). */
export function readableLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const level = LEVELS[Number(o.level)] ?? String(o.level);
  const extra = Object.entries(o)
    .filter(([k]) => !OWN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${String(o.name ?? 'netrr')}${level === 'info' ? '' : ` ${level.toUpperCase()}`}: ${String(o.msg ?? '')}${extra !== '' ? ` ${extra}` : ''}`;
}

/** A logger named `name` writing to `out` (stderr by default): JSON lines, or readable lines on a terminal. */
export function createLogger(name: string, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr, readable = out.isTTY === true): Logger {
  const options = { name, base: { name }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!readable) return pino(options, out);
  const pretty = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') out.write(`${readableLine(line)}\n`);
      done();
    },
  });
  return pino(options, pretty);
}
