// `netrr demo --guests`: two real tiny QEMU guests as the replicas, netrr as
// their whole COLO proxy (compare, mirror, redirectors, rewriter, an epoch
// buffer), a client reaching them through slirp's port forward.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netrr } from './helpers/run.ts';

test('netrr demo --guests: the download comes out right through the pair, /who answers the primary\'s role after one checkpoint', async () => {
  const r = await netrr(['demo', '--guests', '--file-bytes', '3000000', '--json'], 240_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    complete: boolean; compared: { primary: number; secondary: number }; released: Record<string, number>; checkpoints: Record<string, number>;
    divergence: { cause: string; flow: string }; epochsCommitted: number; buffer: { released: number };
    rewriter: { seqRewritten: number; ackRewritten: number; checkpoints: number }; download: { bytes: number; md5: string; expectedMd5: string }; who: string;
  };
  assert.equal(s.complete, true);
  assert.equal(s.download.bytes, 3_000_000);
  assert.equal(s.download.md5, s.download.expectedMd5);
  assert.equal(s.who, 'primary\n', 'the secondary\'s answer never reached the client');
  assert.ok(['payload', 'size'].includes(s.divergence.cause), JSON.stringify(s.divergence));
  assert.match(s.divergence.flow, /10\.0\.2\.15:80/);
  assert.ok((s.checkpoints.payload ?? 0) + (s.checkpoints.size ?? 0) >= 1);
  assert.ok(s.rewriter.seqRewritten > 3_000_000 / 1500, 'the secondary\'s segments were shifted into the primary\'s space');
  assert.ok(s.rewriter.checkpoints >= 1, 'the checkpoint reset the rewriter');
  assert.equal(Object.values(s.released).reduce((a, b) => a + b, 0), s.compared.primary, 'each primary frame released once');
  assert.equal(s.buffer.released, s.compared.primary, 'and each went through the epoch buffer');
  assert.ok(s.epochsCommitted > 0);
});
