// Client for the control socket (used by `netrr control` and the tests); it
// speaks to QEMU's QMP as well (capabilities are negotiated on connect).

import net from 'node:net';
import { NetrrError, fromSystemError } from '../errors.ts';
import { parseEndpointSpec } from '../io/endpoint-spec.ts';

export interface ControlEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export class ControlClient {
  readonly events: ControlEvent[] = [];
  greeting: unknown = undefined;
  onEvent: (e: ControlEvent) => void = () => {};
  #sock: net.Socket;
  #buf = '';
  #nextId = 1;
  #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #closed = false;
  /** Resolves when the connection is gone (the server closed it, or close()). */
  readonly closed: Promise<void>;

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    this.closed = new Promise((resolve) => sock.once('close', () => resolve()));
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.#buf += chunk;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        this.#onLine(line);
      }
    });
    sock.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiting.values()) w.reject(new NetrrError('ERR_ENDPOINT_CLOSED', 'control socket closed'));
      this.#waiting.clear();
    });
    sock.on('error', () => {});
  }

  static async connect(spec: string): Promise<ControlClient> {
    const s = parseEndpointSpec(spec.startsWith('unix:') ? spec : `unix:${spec}`);
    if (s.kind !== 'unix') throw new NetrrError('ERR_BAD_ENDPOINT_SPEC', 'control socket must be unix:PATH');
    const sock = net.connect({ path: s.path });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', (e) => reject(fromSystemError(e, `control socket ${s.path}`)));
    });
    const client = new ControlClient(sock);
    // QEMU's QMP answers nothing else before capabilities negotiation; netrr's socket takes it as a no-op.
    await client.execute('qmp_capabilities');
    return client;
  }

  #onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in msg) {
      this.greeting = msg.QMP;
      return;
    }
    if (typeof msg.event === 'string') {
      const e = msg as unknown as ControlEvent;
      this.events.push(e);
      this.onEvent(e);
      return;
    }
    const w = typeof msg.id === 'number' ? this.#waiting.get(msg.id) : undefined;
    if (w === undefined) return;
    this.#waiting.delete(msg.id as number);
    if ('error' in msg) {
      const err = msg.error as { class: string; desc: string };
      w.reject(new NetrrError('ERR_CONTROL_BAD_REQUEST', `${err.class}: ${err.desc}`));
    } else w.resolve(msg.return);
  }

  /** Sends a raw line (for tests of malformed input); the reply arrives without an id. */
  sendRaw(line: string): void {
    this.#sock.write(line.endsWith('\n') ? line : `${line}\n`);
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) return Promise.reject(new NetrrError('ERR_ENDPOINT_CLOSED', 'control socket closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#sock.write(`${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`);
    });
  }

  close(): void {
    this.#sock.end();
  }
}
