// A network interface's carrier, watched through sysfs: the COLO link's loss
// (the cable pulled, the peer host gone, a veth's other end taken down) as a
// failover trigger. /sys/class/net/IF/carrier reads "1" with carrier and
// "0" without; reading it fails when the interface is administratively down
// or gone, which counts as down too. Linux has no readiness event for it that
// Node can wait on, so it is polled; a link must stay down for `downMs`
// before it counts (a flap shorter than that is ignored).

import { readFileSync } from 'node:fs';
import { NetrrError } from '../errors.ts';

/** How often the carrier is read. */
export const LINK_POLL_MS = 50;
/** How long the carrier must stay off before the link counts as lost. */
export const DEFAULT_LINK_DOWN_MS = 300;

export function carrierUp(ifname: string, sysfs = '/sys/class/net'): boolean {
  try {
    return readFileSync(`${sysfs}/${ifname}/carrier`, 'latin1').trim() === '1';
  } catch {
    return false;
  }
}

/** Pure: fed samples in time order, says once when the link has been down for downMs. */
export class DownDetector {
  #downSinceMs = -1;
  #fired = false;
  readonly downMs: number;

  constructor(downMs: number) {
    this.downMs = downMs;
  }

  /** Returns true exactly once: at the first sample at least downMs after the link went down (and stayed down). */
  sample(up: boolean, nowMs: number): boolean {
    if (this.#fired) return false;
    if (up) {
      this.#downSinceMs = -1;
      return false;
    }
    if (this.#downSinceMs < 0) this.#downSinceMs = nowMs;
    if (nowMs - this.#downSinceMs < this.downMs) return false;
    this.#fired = true;
    return true;
  }

  get fired(): boolean {
    return this.#fired;
  }
}

/** `IFACE[,after-ms=N]` (the chain's --failover-link). */
export function parseLinkSpec(text: string): { ifname: string; downMs: number } {
  const [ifname = '', ...props] = text.split(',');
  if (!/^[^\s/]{1,15}$/.test(ifname)) throw new NetrrError('ERR_BAD_OPTION', `--failover-link: "${ifname}" is not an interface name`);
  let downMs = DEFAULT_LINK_DOWN_MS;
  for (const p of props) {
    const m = /^after-ms=(\d+)$/.exec(p);
    if (m === null) throw new NetrrError('ERR_BAD_OPTION', `--failover-link: unknown property "${p}" (known: after-ms=N)`);
    downMs = Number(m[1]);
  }
  return { ifname, downMs };
}

/** Polls an interface's carrier; calls onLost once when it has been down for downMs. */
export class LinkWatch {
  readonly ifname: string;
  readonly detector: DownDetector;
  readonly #onLost: () => void;
  readonly #nowMs: () => number;
  readonly #sysfs: string;
  #timer: NodeJS.Timeout | null = null;

  constructor(ifname: string, downMs: number, onLost: () => void, nowMs: () => number, sysfs = '/sys/class/net') {
    this.ifname = ifname;
    this.detector = new DownDetector(downMs);
    this.#onLost = onLost;
    this.#nowMs = nowMs;
    this.#sysfs = sysfs;
  }

  /** Starts polling; the interface must exist and have carrier now (a watch of a dead link would fire at once). */
  start(): void {
    if (!carrierUp(this.ifname, this.#sysfs)) throw new NetrrError('ERR_BAD_OPTION', `--failover-link: ${this.ifname} has no carrier now (or no such interface in this network namespace)`);
    this.#timer = setInterval(() => {
      if (this.detector.sample(carrierUp(this.ifname, this.#sysfs), this.#nowMs())) {
        this.stop();
        this.#onLost();
      }
    }, LINK_POLL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
