// The runner every app goes through (src/cli/runner.ts), in process, with
// real bridges on unix sockets: the two control shapes, reopen, quit, and a
// fatal error in one instance stopping them all and ending the run with it.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Bridge } from '../src/app/bridge.ts';
import { type RunnerLog, runApps } from '../src/cli/runner.ts';
import { ControlClient } from '../src/control/control-client.ts';
import { NetrrError } from '../src/errors.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-runner-');
after(() => tmp.cleanup());

function collect(): RunnerLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
}

const bridge = (d: string, n: string): Bridge => new Bridge({ a: `unix:${d}/${n}a.sock,server=on`, b: `unix:${d}/${n}b.sock,server=on`, capture: join(d, `${n}.pcapng`) });

/** The runner listens once its apps are built: connect when it does (retrying while the path refuses). */
async function connectWhenUp(path: string): Promise<ControlClient> {
  const t0 = Date.now();
  for (;;) {
    try {
      return await ControlClient.connect(`unix:${path}`);
    } catch (e) {
      if (Date.now() - t0 > 10_000) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

test('several instances: commands take "instance", reopen answers for each, quit stops all and the run ends 0', async () => {
  const d = tmp.sub();
  const log = collect();
  const b0 = bridge(d, 'x');
  const b1 = bridge(d, 'y');
  const run = runApps([{ name: 'b0', app: b0 }, { name: 'b1', app: b1 }], { control: `unix:${join(d, 'ctl.sock')}`, log });
  const ctl = await connectWhenUp(join(d, 'ctl.sock'));
  assert.deepEqual(await ctl.execute('query-instances'), [{ name: 'b0', kind: 'bridge' }, { name: 'b1', kind: 'bridge' }]);
  assert.deepEqual(await ctl.execute('reopen'), { reopened: ['b0', 'b1'] });
  await assert.rejects(ctl.execute('epoch-begin'), /say which instance/);
  await assert.rejects(ctl.execute('query-status', { instance: 'nope' }), /no instance "nope"/);
  await ctl.execute('quit');
  assert.equal(await run, 0);
  assert.ok(log.lines.some((l) => l.startsWith('info running')), log.lines.join('\n'));
  assert.equal(log.lines.filter((l) => l.startsWith('info stopped')).length, 2, 'each instance logged as it stopped');
  ctl.close();
});

test('one command\'s app: its commands as they are, query-status for it; a fatal error stops the run and ends it with that error', async () => {
  const d = tmp.sub();
  const log = collect();
  const b = bridge(d, 'z');
  const run = runApps([{ name: 'bridge', app: b }], { control: `unix:${join(d, 'ctl.sock')}`, single: true, log });
  const ctl = await connectWhenUp(join(d, 'ctl.sock'));
  const st = (await ctl.execute('query-status')) as { kind: string; running: boolean };
  assert.equal(st.kind, 'bridge');
  assert.equal(st.running, true);
  assert.deepEqual(await ctl.execute('reopen'), {});
  const events: string[] = [];
  ctl.onEvent = (e) => events.push(e.event);
  b.onFatal(new NetrrError('ERR_LOG_WRITE', 'the disk said no'));
  await assert.rejects(run, (e: unknown) => e instanceof NetrrError && e.code === 'ERR_LOG_WRITE');
  await waitFor(() => events.includes('SHUTDOWN'), 5000, 'SHUTDOWN after FATAL_ERROR');
  assert.deepEqual(events.filter((e) => e === 'FATAL_ERROR' || e === 'SHUTDOWN'), ['FATAL_ERROR', 'SHUTDOWN']);
  ctl.close();
});
