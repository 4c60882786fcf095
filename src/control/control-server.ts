// The control socket every long-running command offers: a QMP-like JSON-lines
// protocol on a unix socket created with mode 0600.
//   → {"execute": NAME, "arguments": {…}, "id": any}
//   ← {"return": …, "id": …} | {"error": {"class": …, "desc": …}, "id": …}
//   ← {"event": NAME, "data": {…}, "timestamp": {"seconds": s, "microseconds": us}}
// A greeting in QMP's shape is sent first; `qmp_capabilities` is accepted (a
// no-op) so that QMP client libraries can talk to us unchanged. Malformed
// input gets an error reply; an over-long line closes that client.

import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { NetrrError, fromSystemError, isNetrrError } from '../errors.ts';
import { parseEndpointSpec } from '../io/endpoint-spec.ts';

/** Longest request line accepted. */
export const CONTROL_MAX_LINE_BYTES = 1024 * 1024;
/** Output a slow client may have pending before it is dropped (events are not worth unbounded memory). */
export const CONTROL_MAX_PENDING_BYTES = 4 * 1024 * 1024;

export type CommandHandler = (args: Record<string, unknown>) => unknown;

export interface CommandInfo {
  readonly handler: CommandHandler;
  readonly help: string;
}

export class ControlServer {
  readonly path: string;
  readonly version: string;
  readonly commands = new Map<string, CommandInfo>();
  #server: net.Server | null = null;
  #clients = new Set<net.Socket>();
  /** Requests answered with an error (malformed or failing). */
  errors = 0;
  requests = 0;

  constructor(spec: string, version: string) {
    const s = parseEndpointSpec(spec);
    if (s.kind !== 'unix') throw new NetrrError('ERR_BAD_ENDPOINT_SPEC', `control socket must be unix:PATH, not "${spec}"`);
    this.path = s.path;
    this.version = version;
    this.register('qmp_capabilities', 'accepted for QMP client compatibility; does nothing', () => ({}));
    this.register('query-commands', 'list the commands this socket accepts', () =>
      [...this.commands.entries()].map(([name, c]) => ({ name, help: c.help })),
    );
  }

  register(name: string, help: string, handler: CommandHandler): void {
    this.commands.set(name, { handler, help });
  }

  async listen(): Promise<void> {
    try {
      if (lstatSync(this.path).isSocket()) unlinkSync(this.path);
    } catch {
      // no stale socket
    }
    const server = net.createServer((sock) => this.#onClient(sock));
    this.#server = server;
    // Created private (0600) by the umask in force while it binds. No chmod after: a client may
    // connect and a fatal error close the socket (removing its file) before a chmod would run.
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e) => reject(fromSystemError(e, `control socket ${this.path}`)));
        server.listen(this.path, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
  }

  /** Sends an asynchronous event to every client. */
  emit(event: string, data: Record<string, unknown> = {}): void {
    if (this.#clients.size === 0) return;
    const now = Date.now();
    const line = `${JSON.stringify({ event, data, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } })}\n`;
    for (const c of this.#clients) this.#write(c, line);
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    this.#clients.clear();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  #write(sock: net.Socket, line: string): void {
    if (sock.writableLength > CONTROL_MAX_PENDING_BYTES) {
      sock.destroy();
      this.#clients.delete(sock);
      return;
    }
    sock.write(line);
  }

  #onClient(sock: net.Socket): void {
    this.#clients.add(sock);
    sock.setEncoding('utf8');
    this.#write(sock, `${JSON.stringify({ QMP: { version: { package: `netrr ${this.version}` }, capabilities: [] } })}\n`);
    let pending = '';
    sock.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line !== '') void this.#handleLine(sock, line);
      }
      if (pending.length > CONTROL_MAX_LINE_BYTES) {
        this.errors++;
        this.#write(sock, `${JSON.stringify({ error: { class: 'GenericError', desc: `request line longer than ${CONTROL_MAX_LINE_BYTES} bytes` } })}\n`);
        sock.end();
        pending = '';
      }
    });
    sock.on('error', () => this.#clients.delete(sock));
    sock.on('close', () => this.#clients.delete(sock));
  }

  async #handleLine(sock: net.Socket, line: string): Promise<void> {
    this.requests++;
    let id: unknown;
    const reply = (body: Record<string, unknown>): void => {
      if (id !== undefined) body.id = id;
      this.#write(sock, `${JSON.stringify(body)}\n`);
    };
    const fail = (cls: string, desc: string): void => {
      this.errors++;
      reply({ error: { class: cls, desc } });
    };
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch {
      return fail('GenericError', 'request is not valid JSON');
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) return fail('GenericError', 'request must be a JSON object');
    const r = req as Record<string, unknown>;
    id = r.id;
    if (typeof r.execute !== 'string') return fail('GenericError', 'request needs "execute": "<command>"');
    const cmd = this.commands.get(r.execute);
    if (cmd === undefined) return fail('CommandNotFound', `the command ${r.execute} has not been found`);
    const args = r.arguments ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return fail('GenericError', '"arguments" must be an object');
    try {
      const result = await cmd.handler(args as Record<string, unknown>);
      reply({ return: result ?? {} });
    } catch (e) {
      fail('GenericError', isNetrrError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));
    }
  }
}
