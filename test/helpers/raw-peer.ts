// A raw socket peer for endpoint tests: writes arbitrary bytes, collects
// whole records with our decoder (so tests can see exactly what arrived).

import net from 'node:net';
import { FrameDecoder } from '../../src/codec/qemu-framing.ts';

export class RawPeer {
  readonly frames: Uint8Array[] = [];
  readonly vnet: number[] = [];
  dataEvents = 0;
  closed = false;
  readonly decoder: FrameDecoder;
  sock: net.Socket;

  constructor(sock: net.Socket, vnetHdr = false) {
    this.sock = sock;
    this.decoder = new FrameDecoder({ vnetHdr }, (f, v) => {
      this.frames.push(Uint8Array.from(f));
      this.vnet.push(v);
    });
    sock.on('data', (c: Buffer) => {
      this.dataEvents++;
      this.decoder.push(c);
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }

  /**
   * Connects, retrying while the path or port refuses: a unix socket file
   * exists from bind(), a moment before listen(), and a loaded machine can
   * connect inside that moment (it failed CI once with ECONNREFUSED).
   */
  static async connect(opts: { path: string } | { host: string; port: number }, vnetHdr = false, timeoutMs = 10_000): Promise<RawPeer> {
    const t0 = Date.now();
    for (;;) {
      try {
        const s = await connectOnce(opts);
        return new RawPeer(s, vnetHdr);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() - t0 > timeoutMs) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  write(b: Uint8Array): Promise<void> {
    return new Promise((resolve) => this.sock.write(b, () => resolve()));
  }
}

function connectOnce(opts: { path: string } | { host: string; port: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(opts as net.NetConnectOpts);
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A server accepting raw peers one by one. */
export async function rawServer(path: string, vnetHdr = false): Promise<{ server: net.Server; peers: RawPeer[]; close: () => Promise<void> }> {
  const peers: RawPeer[] = [];
  const server = net.createServer((s) => peers.push(new RawPeer(s, vnetHdr)));
  await new Promise<void>((r) => server.listen(path, r));
  return {
    server,
    peers,
    close: () =>
      new Promise<void>((r) => {
        for (const p of peers) p.sock.destroy();
        server.close(() => r());
      }),
  };
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
