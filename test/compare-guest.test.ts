// A real guest (Debian cloud kernel + busybox, TCG) whose QEMU filter-mirror and
// filter-redirector are wired to `netrr compare` instead of QEMU's colo-compare:
//   guest output ─ filter-mirror (copy) ──────────▶ secondary-in ┐
//                └ filter-redirector (consume) ──▶ primary-in ─┴▶ netrr compare ─▶ out
//   out ─▶ filter-redirector indev ─▶ slirp ─▶ host TCP echo server
// The guest pings and makes three TCP exchanges; every frame it sends must
// reach the world exactly once, matched, with no checkpoint requested.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ControlClient } from '../src/control/control-client.ts';
import { bootGuest, waitTask } from './helpers/guest.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { NETRR_BIN, start, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-guest-');
after(() => tmp.cleanup());

for (const mode of ['qemu', 'extended'] as const) {
  test(`real guest through filter-mirror/filter-redirector and netrr compare --mode ${mode}: output released exactly once`, async () => {
    const d = join(tmp.path, mode);
    mkdirSync(d);
    const received: string[] = [];
    const server = net.createServer((c) => {
      let buf = '';
      c.on('data', (x) => {
        buf += x.toString();
        if (buf.endsWith('\n')) {
          received.push(buf);
          c.end(`echo:${buf}`);
        }
      });
      c.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const cmp = start(process.execPath, [NETRR_BIN, 'compare', '--mode', mode, '--primary-in', `unix:${d}/pri.sock,server=on`, '--secondary-in', `unix:${d}/sec.sock,server=on`, '--outdev', `unix:${d}/out.sock,server=on`, '--control', `unix:${d}/ctl.sock`]);
    let ctl: ControlClient | null = null;
    try {
      await waitFor(() => cmp.child.exitCode !== null || ['pri', 'sec', 'out', 'ctl'].every((n) => existsSync(`${d}/${n}.sock`)), 10_000, 'compare sockets');
      assert.equal(cmp.child.exitCode, null, cmp.out());
      // Filters are created head to tail; guest output walks them tail → head (reference qemu-interop.md §3):
      // f2 mirrors to secondary-in and passes, f1 redirects to primary-in; f0 injects compare's output toward slirp.
      const g = bootGuest('tcp-echo', [
        '-netdev', 'user,id=n1', '-device', 'virtio-net-pci,netdev=n1,romfile=',
        '-chardev', `socket,id=c_out,path=${d}/out.sock`,
        '-chardev', `socket,id=c_pri,path=${d}/pri.sock`,
        '-chardev', `socket,id=c_sec,path=${d}/sec.sock`,
        '-object', 'filter-redirector,id=f0,netdev=n1,queue=rx,indev=c_out',
        '-object', 'filter-redirector,id=f1,netdev=n1,queue=rx,outdev=c_pri',
        '-object', 'filter-mirror,id=f2,netdev=n1,queue=rx,outdev=c_sec',
      ], `netrr.port=${port}`);
      const serial = await waitTask(g, 90_000);
      assert.match(serial, /PING-OK/, serial);
      for (const i of [1, 2, 3]) assert.match(serial, new RegExp(`echo:guest line ${i}`), serial);
      assert.deepEqual(received.sort(), ['guest line 1\n', 'guest line 2\n', 'guest line 3\n']);
      ctl = await ControlClient.connect(`unix:${d}/ctl.sock`);
      const st = (await ctl.execute('query-status')) as {
        counters: { primary: { in: number; flushed: number }; secondary: { in: number }; checkpointRequests: number };
        released: number;
        queued: { primary: number; secondary: number };
        endpoints: { name: string; counters: { txFrames: number; txDrops: Record<string, number> } }[];
      };
      const c = st.counters;
      const releasedTotal = st.released;
      assert.ok(c.primary.in >= 10, `primary frames seen: ${c.primary.in}`);
      assert.equal(c.secondary.in, c.primary.in, 'the mirror saw the same frames');
      assert.equal(releasedTotal + st.queued.primary, c.primary.in, 'each primary released once (or still queued)');
      assert.equal(c.checkpointRequests, 0, 'identical streams never diverge');
      assert.equal(c.primary.flushed, 0);
      const out = st.endpoints.find((e) => e.name === 'outdev')!;
      assert.equal(out.counters.txFrames, releasedTotal, 'everything released went to the world');
      assert.ok(Object.values(out.counters.txDrops).every((n) => n === 0));
    } finally {
      ctl?.close();
      if (cmp.child.exitCode === null) cmp.child.kill('SIGTERM');
      server.close();
    }
  });
}
