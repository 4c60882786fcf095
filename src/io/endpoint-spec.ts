// Endpoint specs in QEMU's spirit (reference qemu-interop.md §2):
//   unix:PATH[,server=on][,vnet-hdr=on][,reconnect-ms=N]
//   tcp:HOST:PORT[,server=on][,vnet-hdr=on][,reconnect-ms=N]
//   udp:LOCALHOST:PORT,remote=HOST:PORT      (one frame per datagram)
//   tap:IFNAME[,netns=NAME|PATH][,vnet-hdr=on][,vnet-hdr-len=10|12][,reconnect-ms=N]
//                                            (a Linux tap device, through native/netrr-tap.c)
// `vnet_hdr_support=on` is accepted as an alias of vnet-hdr, as QEMU spells it.

import { NetrrError } from '../errors.ts';

/** Default ceiling of the client reconnect backoff. */
export const DEFAULT_RECONNECT_MS = 2000;

interface Common {
  readonly text: string;
  readonly vnetHdr: boolean;
}

export interface UnixSpec extends Common {
  readonly kind: 'unix';
  readonly path: string;
  readonly server: boolean;
  readonly reconnectMs: number;
}

export interface TcpSpec extends Common {
  readonly kind: 'tcp';
  readonly host: string;
  readonly port: number;
  readonly server: boolean;
  readonly reconnectMs: number;
}

export interface UdpSpec extends Common {
  readonly kind: 'udp';
  readonly localHost: string;
  readonly localPort: number;
  readonly remoteHost: string;
  readonly remotePort: number;
}

export interface TapSpec extends Common {
  readonly kind: 'tap';
  readonly ifname: string;
  /** Named network namespace (/run/netns/NAME) or a namespace file path. */
  readonly netns: string | undefined;
  /** Size of the tap's vnet header when vnetHdr (virtio's 10- or 12-byte form). */
  readonly vnetHdrLen: 10 | 12;
  /** Tap endpoints are never servers; the helper is restarted with backoff like a client. */
  readonly server: false;
  readonly reconnectMs: number;
}

/** Interface names are at most IFNAMSIZ - 1 bytes (linux/if.h). */
export const IFNAME_MAX_BYTES = 15;

/** Specs whose frames travel as QEMU-framed records over a byte stream. */
export type StreamSpec = UnixSpec | TcpSpec | TapSpec;
export type EndpointSpec = StreamSpec | UdpSpec;

function bad(text: string, why: string): never {
  throw new NetrrError('ERR_BAD_ENDPOINT_SPEC', `bad endpoint "${text}": ${why}`);
}

function parseBool(text: string, key: string, value: string): boolean {
  if (value === 'on' || value === 'true' || value === 'yes' || value === '') return true;
  if (value === 'off' || value === 'false' || value === 'no') return false;
  return bad(text, `${key} must be on or off, not "${value}"`);
}

/** Splits "HOST:PORT", "[v6]:PORT" → [host, port]. */
export function parseHostPort(text: string, hp: string): [string, number] {
  let host: string;
  let portText: string;
  if (hp.startsWith('[')) {
    const close = hp.indexOf(']');
    if (close < 0 || hp[close + 1] !== ':') bad(text, `"${hp}" is not [IPv6]:PORT`);
    host = hp.slice(1, close);
    portText = hp.slice(close + 2);
  } else {
    const colon = hp.lastIndexOf(':');
    if (colon < 0) bad(text, `"${hp}" has no :PORT`);
    host = hp.slice(0, colon);
    portText = hp.slice(colon + 1);
  }
  if (!/^\d+$/.test(portText)) bad(text, `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) bad(text, `port ${port} is out of range`);
  if (host === '') host = '127.0.0.1';
  return [host, port];
}

/** Adds vnet-hdr=on to an endpoint spec when a vnet_hdr_support property asks for it (and the spec does not say). */
export function withVnet(spec: string, on: boolean): string {
  return on && !/vnet[-_]hdr/.test(spec) ? `${spec},vnet-hdr=on` : spec;
}

export function parseEndpointSpec(text: string): EndpointSpec {
  const colon = text.indexOf(':');
  if (colon < 0) bad(text, 'expected unix:PATH, tcp:HOST:PORT, udp:HOST:PORT,remote=HOST:PORT or tap:IFNAME');
  const kind = text.slice(0, colon);
  const [main = '', ...opts] = text.slice(colon + 1).split(',');
  const kv = new Map<string, string>();
  for (const o of opts) {
    const eq = o.indexOf('=');
    const key = (eq < 0 ? o : o.slice(0, eq)).trim();
    if (key === '') bad(text, 'empty option');
    if (kv.has(key)) bad(text, `option ${key} given twice`);
    kv.set(key, eq < 0 ? '' : o.slice(eq + 1));
  }
  const take = (key: string): string | undefined => {
    const v = kv.get(key);
    kv.delete(key);
    return v;
  };
  let vnetHdr = false;
  for (const key of ['vnet-hdr', 'vnet_hdr_support']) {
    const v = take(key);
    if (v !== undefined) vnetHdr = parseBool(text, key, v);
  }
  const finish = <T extends EndpointSpec>(spec: T): T => {
    const left = [...kv.keys()];
    if (left.length > 0) bad(text, `unknown option${left.length > 1 ? 's' : ''} ${left.join(', ')} for ${kind}`);
    return spec;
  };
  const reconnect = (): number => {
    const r = take('reconnect-ms');
    if (r === undefined) return DEFAULT_RECONNECT_MS;
    if (!/^\d+$/.test(r) || Number(r) < 1) bad(text, `reconnect-ms must be a positive number, not "${r}"`);
    return Number(r);
  };
  if (kind === 'tap') {
    if (!/^[A-Za-z0-9_.-]+$/.test(main) || main.length > IFNAME_MAX_BYTES) bad(text, `interface name "${main}" must be 1-${IFNAME_MAX_BYTES} of A-Z a-z 0-9 _ . -`);
    const netns = take('netns');
    if (netns === '') bad(text, 'empty netns');
    const l = take('vnet-hdr-len');
    if (l !== undefined && l !== '10' && l !== '12') bad(text, `vnet-hdr-len must be 10 or 12, not "${l}"`);
    const reconnectMs = reconnect();
    return finish({ kind, text, vnetHdr, ifname: main, netns, vnetHdrLen: l === '10' ? 10 : 12, server: false, reconnectMs });
  }
  if (kind === 'unix' || kind === 'tcp') {
    const s = take('server');
    const server = s === undefined ? false : parseBool(text, 'server', s);
    if (server && kv.has('reconnect-ms')) bad(text, 'reconnect-ms applies to client endpoints only');
    const reconnectMs = reconnect();
    if (kind === 'unix') {
      if (main === '') bad(text, 'empty socket path');
      return finish({ kind, text, vnetHdr, path: main, server, reconnectMs });
    }
    const [host, port] = parseHostPort(text, main);
    if (port === 0 && !server) bad(text, 'a client needs a non-zero port');
    return finish({ kind, text, vnetHdr, host, port, server, reconnectMs });
  }
  if (kind === 'udp') {
    const [localHost, localPort] = parseHostPort(text, main);
    const remote = take('remote');
    if (remote === undefined) bad(text, 'udp needs remote=HOST:PORT');
    const [remoteHost, remotePort] = parseHostPort(text, remote);
    if (remotePort === 0) bad(text, 'remote port must be non-zero');
    return finish({ kind, text, vnetHdr, localHost, localPort, remoteHost, remotePort });
  }
  return bad(text, `unknown kind "${kind}" (expected unix, tcp, udp or tap)`);
}
