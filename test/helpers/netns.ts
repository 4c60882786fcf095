// Network namespaces the tests create themselves (so no test traffic leaves
// the machine), with programs started inside them: a persistent tap device,
// dnsmasq as a real DHCP/DNS/TFTP server, Node's HTTP server.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './raw-peer.ts';
import { run } from './run.ts';

let counter = 0;

async function ip(args: string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

export class Netns {
  readonly name: string;
  readonly #children: ChildProcess[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  static async create(prefix = 'netrr'): Promise<Netns> {
    const ns = new Netns(`${prefix}-${process.pid}-${counter++}`);
    await ip(['netns', 'add', ns.name]);
    await ip(['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A persistent tap device with an IPv4 address, up (carrier comes when netrr's helper attaches). */
  async addTap(ifname: string, cidr: string, vnetHdr = false): Promise<void> {
    await ip(['-n', this.name, 'tuntap', 'add', 'dev', ifname, 'mode', 'tap', ...(vnetHdr ? ['vnet_hdr'] : [])]);
    await ip(['-n', this.name, 'addr', 'add', cidr, 'dev', ifname]);
    await ip(['-n', this.name, 'link', 'set', ifname, 'up']);
  }

  /**
   * An interface with an address and a default route via `gateway` (a veth
   * pair inside the namespace): what passt copies its guest's addressing from.
   */
  async addUplink(cidr: string, gateway: string): Promise<void> {
    await ip(['-n', this.name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    await ip(['-n', this.name, 'addr', 'add', cidr, 'dev', 'veth0']);
    await ip(['-n', this.name, 'link', 'set', 'veth0', 'up']);
    await ip(['-n', this.name, 'link', 'set', 'veth1', 'up']);
    await ip(['-n', this.name, 'route', 'add', 'default', 'via', gateway]);
  }

  /** Starts a program inside the namespace; killed by destroy(). */
  spawn(cmd: string, args: string[]): { child: ChildProcess; out: () => string } {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    this.#children.push(child);
    return { child, out: () => out };
  }

  /**
   * dnsmasq on `ifname`: DHCP handing out exactly `lease` (if given), DNS answering
   * `hosts` (name → address) and nothing else, TFTP from `tftpRoot`.
   */
  async dnsmasq(o: { ifname: string; dir: string; lease?: string; hosts: Record<string, string>; tftpRoot: string }): Promise<() => string> {
    const pid = join(o.dir, 'dnsmasq.pid');
    const dhcp = o.lease === undefined ? [] : [`--dhcp-range=${o.lease},${o.lease},255.255.255.0,1h`, `--dhcp-leasefile=${join(o.dir, 'dnsmasq.leases')}`];
    const p = this.spawn('dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--user=root', '--log-facility=-', '--log-queries', '--log-dhcp', '--no-ping',
      `--interface=${o.ifname}`, '--bind-interfaces',
      ...dhcp,
      ...Object.entries(o.hosts).map(([name, addr]) => `--host-record=${name},${addr}`),
      '--enable-tftp', `--tftp-root=${o.tftpRoot}`, `--pid-file=${pid}`,
    ]);
    await waitFor(() => existsSync(pid) || p.child.exitCode !== null, 10_000, 'dnsmasq');
    if (p.child.exitCode !== null) throw new Error(`dnsmasq exited: ${p.out()}`);
    return p.out;
  }

  /** Node's HTTP server inside the namespace, serving one file's bytes at /file.bin. */
  async httpServer(host: string, port: number, file: string): Promise<void> {
    const script = `const fs=require('fs');require('http').createServer((q,r)=>{if(q.url==='/file.bin')r.end(fs.readFileSync(${JSON.stringify(file)}));else r.writeHead(404).end()}).listen(${port},${JSON.stringify(host)},()=>console.log('listening'))`;
    const p = this.spawn(process.execPath, ['-e', script]);
    await waitFor(() => p.out().includes('listening') || p.child.exitCode !== null, 10_000, 'http server');
    if (p.child.exitCode !== null) throw new Error(`http server exited: ${p.out()}`);
  }

  async destroy(): Promise<void> {
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(this.#children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    await run('ip', ['netns', 'del', this.name]);
  }
}
