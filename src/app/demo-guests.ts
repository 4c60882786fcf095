// `netrr demo --guests`: the demo with two real tiny QEMU guests (the test
// guest, scripts/build-guest.sh) as the primary and the secondary, and
// netrr as QEMU's whole COLO proxy between them and the world (QEMU's slirp,
// guest-less, reaching an HTTP server in this process):
//
//   client (here) ─ slirp hostfwd ─ chain [epochs buffer, r0 ◀ compare out, r1 ▶ compare primary-in, m0 mirror ▶] ─ primary guest
//                                    chain [f1 ◀ mirror, f2 ▶ compare secondary-in, rewriter ts-offset=on] ─ secondary guest
//
// Both guests serve guest/src/colo-serve.c; the client connects to them
// through slirp's port forward, so the connections are opened from outside,
// as a COLO service's are. The two boot apart, so their TCP choices differ:
// the secondary's rewriter shifts its sequence numbers and timestamps into
// the primary's space and compare ignores what legitimately differs. The
// client downloads a file, then asks /who: each guest answers its role, the
// answers differ, compare requests a checkpoint, and the client must get the
// primary's answer.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetrrError } from '../errors.ts';
import { compareConfig } from '../engine/colo-compare/compare-engine.ts';
import { coloServeData } from '../engine/demo-traffic.ts';
import { parseFilterList } from '../engine/filters/filter-spec.ts';
import { QEMU_NO_MACHINE, QemuProcess, slirpWorldArgs } from '../io/qemu-process.ts';
import { Chain } from './chain.ts';
import { CompareProxy } from './compare-proxy.ts';
import { DemoController, type DemoCommonSummary, commonLines } from './demo-controller.ts';
import { LiveServer } from './live/live-server.ts';
import { MirrorFilter } from './filters/mirror-filter.ts';
import { RedirectorFilter } from './filters/redirector-filter.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';

/** How long the guests may take to boot. */
export const GUEST_DEMO_TIMEOUT_MS = 120_000;
/** The client's requests give up after this long. */
const REQUEST_TIMEOUT_MS = 120_000;
const GUEST_IP = '10.0.2.15';
/** slirp's gateway MAC, the guests' only peer: its neighbour entry is made permanent (no ARP on timers that differ between replicas). */
const SLIRP_MAC = '52:55:0a:00:02:02';

/** A loopback TCP port nobody listens on now (for slirp's port forward). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET a path from the forwarded port: bytes, MD5 and (short answers) text. */
function get(port: number, path: string): Promise<{ bytes: number; md5: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const h = createHash('md5');
      let bytes = 0;
      let text = '';
      res.on('data', (b: Buffer) => {
        h.update(b);
        bytes += b.length;
        if (text.length < 256) text += b.toString('latin1');
      });
      res.on('end', () => resolve({ bytes, md5: h.digest('hex'), text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new NetrrError('ERR_IO', `GET ${path}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
}

export interface GuestDemoOptions {
  readonly fileBytes: number;
  readonly host: string;
  readonly port: number;
  readonly lingerMs: number;
  /** Where scripts/build-guest.sh put vmlinuz and initrd.gz. */
  readonly guestDir: string;
  readonly log: (line: string) => void;
}

export interface GuestDemoSummary extends DemoCommonSummary {
  readonly rewriter: { seqRewritten: number; ackRewritten: number; tsRewritten: number; checkpoints: number };
  /** The client's download: bytes and MD5, and the MD5 the file has. */
  readonly download: { bytes: number; md5: string; expectedMd5: string };
  /** What the client got from /who (the primary's answer, or the demo failed). */
  readonly who: string;
  readonly complete: boolean;
}

export class GuestDemo {
  readonly compare: CompareProxy;
  readonly primary: Chain;
  readonly secondary: Chain;
  readonly live: LiveServer;
  readonly controller: DemoController;
  readonly #o: GuestDemoOptions;
  readonly #dir: string;
  readonly #qemus: QemuProcess[] = [];

  constructor(o: GuestDemoOptions) {
    this.#o = o;
    this.#dir = mkdtempSync(join(tmpdir(), 'netrr-demo-guests-'));
    const d = this.#dir;
    this.compare = new CompareProxy({ primaryIn: `unix:${d}/pri.sock,server=on`, secondaryIn: `unix:${d}/sec.sock,server=on`, outdev: `unix:${d}/out.sock,server=on`, vnetHdrSupport: false, config: compareConfig({ mode: 'extended' }) });
    this.primary = new Chain({
      guest: `unix:${d}/p-guest.sock,server=on`,
      network: `unix:${d}/world.sock`,
      filters: parseFilterList(['buffer,id=epochs,mode=epochs,queue=rx', `redirector,id=r0,queue=rx,indev=unix:${d}/out.sock`, `redirector,id=r1,queue=rx,outdev=unix:${d}/pri.sock`, `mirror,id=m0,queue=tx,outdev=unix:${d}/mirror.sock`]),
    });
    this.secondary = new Chain({
      guest: `unix:${d}/s-guest.sock,server=on`,
      // The secondary's own network: nothing on it while COLO runs.
      network: `unix:${d}/s-net.sock,server=on`,
      filters: parseFilterList([`redirector,id=f1,queue=tx,indev=unix:${d}/mirror.sock,,server=on`, `redirector,id=f2,queue=rx,outdev=unix:${d}/sec.sock`, 'rewriter,id=rw,ts-offset=on']),
    });
    // Playing COLO at each checkpoint: the secondary is made the primary's copy (its rewriter's offsets reset), then compare flushes.
    this.controller = new DemoController(this.compare, this.primary, o.log, () => this.secondary.colo('checkpoint'));
    this.live = new LiveServer({
      host: o.host,
      port: o.port,
      instances: () => [
        { name: 'compare', app: this.compare },
        { name: 'primary', app: this.primary },
        { name: 'secondary', app: this.secondary },
      ],
      extra: () => ({ ...this.controller.page(), world: { frames: this.primary.network.counters.txFrames, bytes: this.primary.network.counters.txBytes } }),
    });
  }

  async run(): Promise<GuestDemoSummary> {
    const o = this.#o;
    const d = this.#dir;
    o.log(`netrr demo --guests: live page at ${await this.live.start()} (up while the demo runs)`);
    const fwd = await freePort();
    const world = new QemuProcess([...QEMU_NO_MACHINE, ...slirpWorldArgs(`${d}/world.sock`, `hostfwd=tcp:127.0.0.1:${fwd}-${GUEST_IP}:80`)]);
    this.#qemus.push(world);
    await world.waitForSockets([`${d}/world.sock`]);
    await this.compare.start();
    await this.secondary.start();
    await this.primary.start();
    // Every proxy link up before the guests boot: a mirror with no peer would lose the world's frames.
    const links = (c: Chain): FrameEndpoint[] => c.filters.flatMap((f) => (f instanceof MirrorFilter || f instanceof RedirectorFilter ? f.endpoints : []));
    await Promise.all([this.primary.network, ...links(this.primary), ...links(this.secondary)].map((e) => e.waitConnected(10_000)));
    const boot = (role: string, sock: string): QemuProcess => {
      const q = new QemuProcess([
        '-accel', 'tcg', '-M', 'pc', '-m', '256M', '-nographic', '-nodefaults', '-serial', 'stdio', '-no-reboot',
        '-kernel', join(o.guestDir, 'vmlinuz'), '-initrd', join(o.guestDir, 'initrd.gz'),
        '-append', `console=ttyS0 quiet panic=-1 netrr.task=colo-serve ipv6.disable=1 netrr.client-mac=${SLIRP_MAC} netrr.role=${role}`,
        '-netdev', `stream,id=n1,server=off,addr.type=unix,addr.path=${sock}`, '-device', 'virtio-net-pci,netdev=n1,romfile=',
      ]);
      this.#qemus.push(q);
      return q;
    };
    o.log('  booting the primary and the secondary (TCG)');
    const guests = [boot('primary', `${d}/p-guest.sock`), boot('secondary', `${d}/s-guest.sock`)];
    await Promise.all(guests.map((g) => g.until(() => g.output.includes('COLO-SERVING'), 'the guest serving', GUEST_DEMO_TIMEOUT_MS)));
    this.controller.startEpochs();
    let download: { bytes: number; md5: string };
    let who: string;
    try {
      o.log(`  the client downloads ${o.fileBytes} bytes from the pair, then asks /who (each guest answers its role)`);
      download = await get(fwd, `/data/${o.fileBytes}`);
      who = (await get(fwd, '/who')).text;
    } finally {
      this.controller.stop();
    }
    const expectedMd5 = createHash('md5').update(coloServeData(o.fileBytes)).digest('hex');
    const rw = this.secondary.filters[2]!.report() as { seqRewritten: number; ackRewritten: number; tsRewritten: number; checkpoints: number };
    return {
      ...this.controller.summary(),
      rewriter: { seqRewritten: rw.seqRewritten, ackRewritten: rw.ackRewritten, tsRewritten: rw.tsRewritten, checkpoints: rw.checkpoints },
      download: { bytes: download.bytes, md5: download.md5, expectedMd5 },
      who,
      complete: download.bytes === o.fileBytes && download.md5 === expectedMd5 && who === 'primary\n',
    };
  }

  async close(): Promise<void> {
    if (this.#o.lingerMs > 0) await new Promise((r) => setTimeout(r, this.#o.lingerMs));
    for (const q of this.#qemus) await q.stop();
    await this.primary.stop(1000);
    await this.secondary.stop(1000);
    await this.compare.stop(1000);
    await this.live.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

export function formatGuestSummary(s: GuestDemoSummary): string {
  const l = commonLines(s);
  const d = s.divergence;
  return [
    `netrr demo --guests: ${s.complete ? 'done' : 'INCOMPLETE'} in ${s.seconds} s`,
    l.compared,
    l.released,
    `${l.checkpoints}${d !== null ? `; the first: ${d.cause} on ${d.flow}${d.firstDiffOffset !== undefined ? `, first differing byte at ${d.firstDiffOffset}` : ''}` : ''}`,
    `  rewriter      ${s.rewriter.seqRewritten} secondary segments and ${s.rewriter.tsRewritten} timestamps shifted into the primary's space, ${s.rewriter.ackRewritten} ACKs toward it; ${s.rewriter.checkpoints} checkpoints`,
    l.epochs,
    `  download      ${s.download.bytes} bytes, MD5 ${s.download.md5}${s.download.md5 === s.download.expectedMd5 ? " (the file's)" : ` (the file's is ${s.download.expectedMd5})`}`,
    `  /who          the client got ${JSON.stringify(s.who)}${s.who === 'primary\n' ? ": the primary's answer, the secondary's never left" : ''}`,
  ].join('\n');
}

export function checkGuestDemo(s: GuestDemoSummary): void {
  if (!s.complete) throw new NetrrError('ERR_DEMO_INCOMPLETE', `download ${s.download.bytes} bytes (MD5 ${s.download.md5}, want ${s.download.expectedMd5}), /who ${JSON.stringify(s.who)}`);
}
