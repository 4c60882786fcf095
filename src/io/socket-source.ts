// How a stream endpoint obtains its socket, apart from what it does with one
// (src/io/stream-endpoint.ts: framing, batching, backpressure, accounting).
// A server listens and offers each accepted peer; a client dials unix or TCP,
// or spawns the tap helper (src/io/tap-helper.ts), and dials again with
// exponential backoff whenever it fails or its socket is lost.

import { lstatSync, unlinkSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import { type ErrorCode, type NetrrError, fromSystemError } from '../errors.ts';
import type { StreamSpec, TapSpec } from './endpoint-spec.ts';
import type { EndpointEvent } from './frame-endpoint.ts';
import { type OnRead, adoptWithOnread } from './arena-reader.ts';
import { startTapHelper } from './tap-helper.ts';

/** First reconnect delay; doubles up to the spec's reconnect-ms. */
export const RECONNECT_INITIAL_MS = 50;

/** What a source hands its sockets to. */
export interface SocketHost {
  readonly name: string;
  /**
   * Takes a connected socket; false when one is already attached (the source then drops the newcomer).
   * `onread` says whether the socket reads through the host's `onread`; if not, the host reads with 'data'.
   */
  attach(sock: net.Socket, peer: string | undefined, onread: boolean): boolean;
  event(e: EndpointEvent): void;
  /** The tap helper reports a frame the kernel refused. */
  tapRefused(): void;
}

export interface SocketSource {
  /** Listen (servers: resolves once listening) or begin dialling (clients: does not wait). */
  start(): Promise<void>;
  /** The attached socket is gone: a client dials again after its backoff. */
  lost(): void;
  /** Stops listening or dialling; removes a unix server's socket file. */
  close(): Promise<void>;
  /** The actual local address once listening (the port picked for tcp:…:0). */
  readonly local: string | undefined;
  readonly localPort: number | undefined;
}

export interface SocketSourceOptions {
  readonly socketMode?: number | undefined;
  /** Read into the host's memory (src/io/arena-reader.ts) where the socket allows it. */
  readonly onread?: OnRead | undefined;
}

export function socketSource(spec: StreamSpec, host: SocketHost, options: SocketSourceOptions = {}): SocketSource {
  return spec.kind !== 'tap' && spec.server ? new ListenSource(spec, host, options) : new DialSource(spec, host, options.onread);
}

/** Accepts peers; the host keeps one at a time, as QEMU does. */
class ListenSource implements SocketSource {
  readonly #spec: Exclude<StreamSpec, TapSpec>;
  readonly #host: SocketHost;
  readonly #socketMode: number | undefined;
  readonly #onread: OnRead | undefined;
  #server: net.Server | null = null;
  local: string | undefined;

  constructor(spec: Exclude<StreamSpec, TapSpec>, host: SocketHost, options: SocketSourceOptions) {
    this.#spec = spec;
    this.#host = host;
    this.#socketMode = options.socketMode;
    this.#onread = options.onread;
  }

  async start(): Promise<void> {
    const spec = this.#spec;
    const host = this.#host;
    const onread = this.#onread;
    // Accepted paused: nothing is read before the socket is moved onto the host's onread.
    const server = net.createServer({ noDelay: true, pauseOnConnect: onread !== undefined });
    this.#server = server;
    server.on('connection', (accepted) => {
      const peer = spec.kind === 'unix' ? spec.path : `${accepted.remoteAddress}:${accepted.remotePort}`;
      let sock = accepted;
      let viaOnread = false;
      if (onread !== undefined) {
        const adopted = adoptWithOnread(accepted, onread);
        if (adopted !== null) {
          sock = adopted;
          viaOnread = true;
          if (spec.kind === 'tcp') sock.setNoDelay(true);
        } else sock.resume();
      }
      if (!host.attach(sock, peer, viaOnread)) sock.destroy();
    });
    server.on('error', (e) => host.event({ type: 'error', endpoint: host.name, detail: String(e), code: 'ERR_IO' }));
    if (spec.kind === 'unix') removeStaleSocket(spec.path);
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => reject(fromSystemError(e, `listen on ${spec.text}`));
      server.once('error', onError);
      const done = (): void => {
        server.off('error', onError);
        resolve();
      };
      if (spec.kind === 'unix') server.listen(spec.path, done);
      else server.listen(spec.port, spec.host, done);
    });
    if (spec.kind === 'unix' && this.#socketMode !== undefined) await chmod(spec.path, this.#socketMode);
    const addr = server.address();
    this.local = typeof addr === 'string' ? addr : addr === null ? undefined : `${addr.address}:${addr.port}`;
    host.event({ type: 'listening', endpoint: host.name, detail: this.local ?? '' });
  }

  get localPort(): number | undefined {
    const addr = this.#server?.address();
    return addr !== null && typeof addr === 'object' ? addr?.port : undefined;
  }

  lost(): void {
    // A server waits for the next peer.
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.#spec.kind === 'unix') removeStaleSocket(this.#spec.path);
  }
}

/** Dials (unix, TCP) or spawns the tap helper; again with backoff after a failure or a lost socket. */
class DialSource implements SocketSource {
  readonly #spec: StreamSpec;
  readonly #host: SocketHost;
  readonly local = undefined;
  readonly localPort = undefined;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  #backoffMs = RECONNECT_INITIAL_MS;
  #failedStreak = false;
  readonly #onread: OnRead | undefined;

  constructor(spec: StreamSpec, host: SocketHost, onread: OnRead | undefined) {
    this.#spec = spec;
    this.#host = host;
    this.#onread = onread;
  }

  start(): Promise<void> {
    this.#dial();
    return Promise.resolve();
  }

  #dial(): void {
    if (this.#closed) return;
    const spec = this.#spec;
    if (spec.kind === 'tap') {
      this.#spawnTap(spec);
      return;
    }
    const onread = this.#onread;
    const opts = onread !== undefined ? { onread } : {};
    const sock = spec.kind === 'unix' ? net.connect({ path: spec.path, ...opts }) : net.connect({ host: spec.host, port: spec.port, noDelay: true, ...opts });
    let connected = false;
    sock.once('connect', () => {
      connected = true;
      this.#succeeded(sock, spec.kind === 'unix' ? spec.path : `${sock.remoteAddress}:${sock.remotePort}`, onread !== undefined);
    });
    sock.once('error', (e) => {
      if (connected) return; // the host's listeners have it now
      sock.destroy();
      this.#failed(`connect failed: ${e.message}`, 'ERR_CONNECT');
    });
  }

  #spawnTap(spec: TapSpec): void {
    const host = this.#host;
    startTapHelper(spec, {
      onDrop: () => host.tapRefused(),
      onExit: (status, stderr) => {
        if (status !== 0 && !this.#closed) {
          host.event({ type: 'error', endpoint: host.name, detail: `tap helper exited with status ${status}${stderr !== '' ? `: ${stderr}` : ''}`, code: 'ERR_TAP_OPEN' });
        }
      },
    }).then(
      ({ socket, child }) => {
        if (this.#closed) {
          socket.destroy();
          child.kill();
          return;
        }
        // The helper leaves when its socket closes; make sure of it.
        socket.once('close', () => {
          if (child.exitCode === null && child.signalCode === null) child.kill();
        });
        // The helper's socket comes from child_process (its stdio): read with 'data'.
        this.#succeeded(socket, `tap ${spec.ifname}${spec.netns !== undefined ? ` in netns ${spec.netns}` : ''}`, false);
      },
      (e: unknown) => {
        const err = e as NetrrError;
        this.#failed(err.message, err.code ?? 'ERR_TAP_OPEN');
      },
    );
  }

  #succeeded(sock: net.Socket, peer: string, viaOnread: boolean): void {
    if (this.#closed) {
      sock.destroy();
      return;
    }
    this.#backoffMs = RECONNECT_INITIAL_MS;
    this.#failedStreak = false;
    if (!this.#host.attach(sock, peer, viaOnread)) sock.destroy();
  }

  /** One error event per streak of failed attempts, then a retry with backoff. */
  #failed(detail: string, code: ErrorCode): void {
    if (!this.#failedStreak) {
      this.#failedStreak = true;
      this.#host.event({ type: 'error', endpoint: this.#host.name, detail: `${detail}; retrying`, code });
    }
    this.lost();
  }

  lost(): void {
    if (this.#closed || this.#timer !== null) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#spec.reconnectMs);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#dial();
    }, delay);
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    return Promise.resolve();
  }
}

/** Removes a leftover unix socket file (never a regular file: that is the user's). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}
