// The live page's server: one loopback HTTP port with the page itself (no
// external assets), a server-sent-events stream of snapshots, the same
// snapshot as JSON, and /metrics in Prometheus' text format. It reads the
// apps' status and counters when asked; the apps know nothing of it.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromSystemError } from '../../errors.ts';
import type { App } from '../app.ts';
import { LIVE_PAGE_HTML } from './live-page.ts';
import { prometheusText } from './metrics-text.ts';

/** A snapshot goes to every page this often. */
export const LIVE_PUSH_MS = 250;

export interface LiveInstance {
  readonly name: string;
  readonly app: App;
}

export interface LiveServerOptions {
  readonly host: string;
  readonly port: number;
  readonly instances: () => readonly LiveInstance[];
  /** More fields for the snapshot (the demo's divergences and epochs). */
  readonly extra?: () => Record<string, unknown>;
}

export class LiveServer {
  readonly #o: LiveServerOptions;
  readonly #server: http.Server;
  readonly #streams = new Set<http.ServerResponse>();
  #timer: NodeJS.Timeout | null = null;
  scrapes = 0;

  constructor(o: LiveServerOptions) {
    this.#o = o;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  /** Listens; resolves with the page's URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (e) => reject(fromSystemError(e, `live page ${this.#o.host}:${this.#o.port}`)));
      this.#server.listen(this.#o.port, this.#o.host, resolve);
    });
    this.#timer = setInterval(() => this.#push(), LIVE_PUSH_MS);
    const a = this.#server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  snapshot(): Record<string, unknown> {
    return {
      t: Date.now(),
      instances: this.#o.instances().map((i) => ({ name: i.name, kind: i.app.kind, status: i.app.status() })),
      ...(this.#o.extra?.() ?? {}),
    };
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(LIVE_PAGE_HTML);
    } else if (path === '/api/snapshot') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(this.snapshot()));
    } else if (path === '/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
      this.#streams.add(res);
      res.on('close', () => this.#streams.delete(res));
      res.write(`data: ${JSON.stringify(this.snapshot())}\n\n`);
    } else if (path === '/metrics') {
      this.scrapes++;
      const text = prometheusText(this.#o.instances().map((i) => ({ name: i.name, tree: i.app.counterTree() })));
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  }

  #push(): void {
    if (this.#streams.size === 0) return;
    const line = `data: ${JSON.stringify(this.snapshot())}\n\n`;
    for (const res of this.#streams) res.write(line);
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
