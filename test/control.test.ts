import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { ControlClient } from '../src/control/control-client.ts';
import { CONTROL_MAX_LINE_BYTES, ControlServer } from '../src/control/control-server.ts';
import { waitFor } from './helpers/raw-peer.ts';
import { tempDir } from './helpers/run.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

test('control socket: mode 0600, QMP-like greeting, commands, errors, events', async () => {
  const path = join(tmp.path, 'ctl.sock');
  const server = new ControlServer(`unix:${path}`, '9.9.9');
  server.register('query-status', 'status', () => ({ running: true }));
  server.register('echo', 'echo arguments', (a) => a);
  server.register('boom', 'fails', () => {
    throw new Error('kaboom');
  });
  await server.listen();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const c = await ControlClient.connect(`unix:${path}`);
  await waitFor(() => c.greeting !== undefined);
  assert.deepEqual(c.greeting, { version: { package: 'netrr 9.9.9' }, capabilities: [] });
  assert.deepEqual(await c.execute('qmp_capabilities'), {});
  assert.deepEqual(await c.execute('query-status'), { running: true });
  assert.deepEqual(await c.execute('echo', { x: [1, 2] }), { x: [1, 2] });
  await assert.rejects(c.execute('nope'), /CommandNotFound: the command nope has not been found/);
  await assert.rejects(c.execute('boom'), /GenericError: kaboom/);
  const names = (await c.execute('query-commands')) as { name: string }[];
  assert.ok(names.some((x) => x.name === 'echo'));
  server.emit('ENDPOINT_CONNECTED', { endpoint: 'a' });
  await waitFor(() => c.events.length === 1);
  assert.equal(c.events[0]!.event, 'ENDPOINT_CONNECTED');
  assert.equal(typeof c.events[0]!.timestamp.seconds, 'number');
  c.close();
  await server.close();
});

test('control socket: malformed input gets error replies and the server keeps serving', async () => {
  const path = join(tmp.path, 'ctl2.sock');
  const server = new ControlServer(`unix:${path}`, '1');
  server.register('query-status', 'status', () => ({ ok: 1 }));
  await server.listen();
  const s = net.connect({ path });
  let text = '';
  s.on('data', (d) => (text += d.toString()));
  s.write('not json\n[1,2]\n{"execute": 5}\n{"execute":"query-status","arguments":[]}\n\n{"execute":"query-status","id":"x"}\n');
  await waitFor(() => text.split('\n').length >= 6);
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok('QMP' in lines[0]!);
  assert.deepEqual(lines.slice(1, 5).map((l) => (l.error as { desc: string }).desc), [
    'request is not valid JSON',
    'request must be a JSON object',
    'request needs "execute": "<command>"',
    '"arguments" must be an object',
  ]);
  assert.deepEqual(lines[5], { return: { ok: 1 }, id: 'x' });
  // An over-long line: error reply, then that client is closed; others are unaffected.
  let closed = false;
  s.on('close', () => (closed = true));
  s.write('x'.repeat(CONTROL_MAX_LINE_BYTES + 10));
  await waitFor(() => closed);
  assert.match(text, /request line longer than/);
  const c = await ControlClient.connect(path);
  assert.deepEqual(await c.execute('query-status'), { ok: 1 });
  c.close();
  await server.close();
});

test('property (fuzz): any request line gets exactly one reply, an error or a return, and the socket keeps serving', async () => {
  const path = join(tmp.path, 'fuzz.sock');
  const server = new ControlServer(`unix:${path}`, '9.9.9');
  server.register('echo', 'echo arguments', (a) => a);
  server.register('boom', 'fails', () => {
    throw new Error('kaboom');
  });
  await server.listen();
  const sock = net.connect(path);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.setEncoding('utf8');
  let buf = '';
  const replies: Record<string, unknown>[] = [];
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (!('QMP' in msg)) replies.push(msg);
    }
  });
  const request = fc.oneof(
    fc.string({ maxLength: 200 }).map((s) => s.replace(/\n/g, ' ')),
    fc.json().map((s) => s.replace(/\n/g, ' ')),
    fc.record({ execute: fc.oneof(fc.constantFrom('echo', 'boom', 'query-commands', 'nope'), fc.anything()), arguments: fc.oneof(fc.anything(), fc.dictionary(fc.string(), fc.jsonValue())), id: fc.oneof(fc.integer(), fc.string()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o) ?? '{}'),
  );
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 20 }), async (lines) => {
        const sent = lines.filter((l) => l.trim() !== '');
        replies.length = 0;
        sock.write(lines.map((l) => `${l}\n`).join(''));
        await waitFor(() => replies.length >= sent.length, 5000, `${sent.length} replies`);
        assert.equal(replies.length, sent.length);
        for (const r of replies) assert.ok(('return' in r) !== ('error' in r), JSON.stringify(r));
      }),
      { numRuns: 100 },
    );
    sock.write('{"execute": "echo", "arguments": {"still": true}, "id": "last"}\n');
    await waitFor(() => replies.some((r) => r.id === 'last'));
    assert.deepEqual(replies.find((r) => r.id === 'last'), { return: { still: true }, id: 'last' });
  } finally {
    sock.destroy();
    await server.close();
  }
});
