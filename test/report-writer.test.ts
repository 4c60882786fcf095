import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ReportWriter } from '../src/io/report-writer.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-report-');
after(() => tmp.cleanup());

test('report lines land in order, whole, and close() waits for the last', async () => {
  const path = join(tmp.path, 'r.jsonl');
  const w = new ReportWriter(path, (e) => assert.fail(e));
  const N = 2000;
  for (let i = 0; i < N; i++) w.append({ i, pad: 'x'.repeat(i % 300) });
  await w.close();
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  assert.equal(lines.length, N);
  lines.forEach((l, i) => assert.equal((JSON.parse(l) as { i: number }).i, i));
  assert.equal(w.written, N);
  assert.equal(w.errors, 0);
});

test('a failed write is counted and handed to onError, never an unhandled rejection, and later lines still go on', async () => {
  const path = join(tmp.path, 'a-directory');
  mkdirSync(path);
  const seen: string[] = [];
  const w = new ReportWriter(path, (e) => seen.push((e as NodeJS.ErrnoException).code ?? e.message));
  w.append({ a: 1 });
  w.append({ a: 2 });
  await w.close();
  assert.equal(w.errors, 2);
  assert.deepEqual(seen, ['EISDIR', 'EISDIR']);
});
