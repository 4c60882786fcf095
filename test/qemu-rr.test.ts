import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { rrArgs, rrMismatch, rrShape } from '../src/engine/qemu-rr-args.ts';
import { GUEST_DIR } from './helpers/guest.ts';
import { netrr, tempDir } from './helpers/run.ts';

const tmp = tempDir('netrr-qrr-');
after(() => tmp.cleanup());

test('rr arguments: icount, one filter-replay per netdev in order, tx=timer; -nic refused; mismatches named', () => {
  const args = ['-netdev', 'user,id=n1', '-device', 'virtio-net-pci,netdev=n1', '-netdev', 'stream,id=n2,addr.type=unix,addr.path=/x', '-netdev', 'hubport,id=h,hubid=0,netdev=n1'];
  const out = rrArgs(args, 'record', '/d/replay.bin');
  assert.deepEqual(out.slice(0, 4), ['-netdev', 'user,id=n1', '-device', 'virtio-net-pci,netdev=n1,tx=timer']);
  assert.deepEqual(out.slice(-6), ['-icount', 'shift=auto,rr=record,rrfile=/d/replay.bin', '-object', 'filter-replay,id=netrr-rr0,netdev=n1', '-object', 'filter-replay,id=netrr-rr1,netdev=n2']);
  assert.deepEqual(rrArgs(['-icount', 'shift=7'], 'replay', 'f').slice(0, 2), ['-icount', 'shift=7,rr=replay,rrfile=f']);
  assert.throws(() => rrShape(['-nic', 'user']), { code: 'ERR_BAD_OPTION' });
  assert.throws(() => rrArgs(['-icount', 'shift=auto,rr=record'], 'record', 'f'), { code: 'ERR_BAD_OPTION' });
  const a = rrShape([...args, '-object', 'filter-dump,id=d,netdev=n1,file=x.pcap']);
  const b = rrShape(args);
  assert.deepEqual(rrMismatch(a, a), []);
  assert.match(rrMismatch(a, b)[0]!, /filter present in the recording but not in the replay: -object filter-dump/);
  assert.match(rrMismatch(b, rrShape(['-netdev', 'user,id=other']))[0]!, /netdevs differ/);
});

test('netrr qemu-rr record then replay a real guest: identical serial output; a replay with a different filter is refused instead of hanging', async () => {
  const dir = join(tmp.path, 'rr');
  mkdirSync(dir);
  const guest = [
    '-accel', 'tcg', '-M', 'pc', '-m', '256M', '-nographic', '-nodefaults', '-serial', 'stdio', '-no-reboot',
    '-kernel', join(GUEST_DIR, 'vmlinuz'), '-initrd', join(GUEST_DIR, 'initrd.gz'),
    // Ping only: slirp's TCP to a host server is live traffic that replay must not need.
    '-append', 'console=ttyS0 quiet panic=-1 netrr.task=tcp-echo netrr.port=9',
    '-netdev', 'user,id=n1', '-device', 'virtio-net-pci,netdev=n1,romfile=',
  ];
  const rec = await netrr(['qemu-rr', 'record', '--log', dir, '--timeout', '120', '--', ...guest], 150_000);
  assert.equal(rec.code, 0, rec.stderr);
  assert.match(rec.stdout, /NETRR-TASK-END/);
  const rep = await netrr(['qemu-rr', 'replay', '--log', dir, '--timeout', '120', '--', ...guest], 150_000);
  assert.equal(rep.code, 0, rep.stderr);
  const lines = (s: string): string[] => s.split('\n').map((l) => l.trim()).filter((l) => /^(NETRR-|PING-|echo:)/.test(l));
  assert.deepEqual(lines(rep.stdout), lines(rec.stdout), 'the replay prints what the recording printed');
  assert.ok(lines(rec.stdout).includes('PING-OK'));
  const bad = await netrr(['qemu-rr', 'replay', '--log', dir, '--timeout', '30', '--', ...guest, '-object', `filter-dump,id=d1,netdev=n1,file=${join(dir, 'x.pcap')}`], 60_000);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /refusing to replay: .*filter present in the replay but not in the recording: -object filter-dump/);
});
