// Issue 8 item 9: a storm of errors must not become a storm of stderr lines.
// 2000 peers in a row each send an oversized length to `netrr bridge`; every
// error reaches the counters and the control socket, stderr shows the first
// one and summaries of the rest.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-storm-');
after(() => tmp.cleanup());

test('2000 framing errors in a row: every one counted, stderr shows one line and summaries', async () => {
  const d = join(tmp.path, 's');
  mkdirSync(d);
  const proc = start(process.execPath, [NETRR_BIN, 'bridge', '--a', `unix:${d}/a.sock,server=on`, '--b', `unix:${d}/b.sock,server=on`, '--control', `unix:${d}/ctl.sock`]);
  await waitFor(() => existsSync(`${d}/a.sock`) && existsSync(`${d}/ctl.sock`), 10_000, 'bridge up');
  const ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
  let events = 0;
  ctl.onEvent = (e) => {
    if (e.event === 'ENDPOINT_ERROR' && (e.data as { code?: string }).code === 'ERR_FRAME_TOO_LONG') events++;
  };
  const N = 2000;
  for (let i = 0; i < N; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ path: `${d}/a.sock` });
      s.on('error', () => {});
      s.once('connect', () => s.write(Uint8Array.of(0xff, 0xff, 0xff, 0xff)));
      s.once('close', () => resolve());
      s.once('timeout', () => reject(new Error('netrr kept a peer that sent a bad length')));
      s.setTimeout(10_000);
    });
  }
  await waitFor(() => events === N, 10_000, 'every error as a control event');
  const st = (await ctl.execute('query-status')) as { endpoints: { name: string; counters: { framingErrors: number } }[] };
  assert.equal(st.endpoints.find((e) => e.name === 'a')!.counters.framingErrors, N);
  await ctl.execute('quit');
  await waitFor(() => proc.child.exitCode !== null, 10_000, 'bridge exits');
  assert.equal(proc.child.exitCode, 0);
  const lines = proc.out().trim().split('\n').filter((l) => l.includes('ERR_FRAME_TOO_LONG'));
  const summarised = lines.map((l) => /(\d+) more like this in/.exec(l)).reduce((s, m) => s + (m === null ? 0 : Number(m[1])), 0);
  const shown = lines.filter((l) => !/more like this/.test(l)).length;
  assert.equal(shown + summarised, N, proc.out());
  assert.ok(lines.length <= 2 + 2 * Math.ceil(60 / 5), `${lines.length} stderr lines for ${N} errors`);
  ctl.close();
});
