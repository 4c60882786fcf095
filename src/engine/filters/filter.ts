// The filter contract of `netrr chain`, after QEMU's netfilter (reference
// qemu-interop.md §3): a filter sees a frame with its direction and returns
// PASS (the chain goes on) or CONSUMED (the filter owns it now and may pass
// it on later, after itself, through its context). Directions are QEMU's:
// `tx` = sent by the netdev (network → guest), `rx` = sent to it (guest →
// network). Filters get COLO events; the default on failover is status off.
// A filter that returns PASS keeps no reference to the frame (a mirror's port
// copies what it must queue): the filters after it may rewrite it in place.

import type { CounterTree } from '../counter-tree.ts';
import type { NetrrError } from '../../errors.ts';

export type FilterDirection = 'rx' | 'tx';
export type FilterQueue = 'all' | 'rx' | 'tx';
export type ColoEvent = 'checkpoint' | 'failover';

export const FILTER_PASS = 0;
export const FILTER_CONSUMED = 1;
export type FilterResult = typeof FILTER_PASS | typeof FILTER_CONSUMED;

/** What a filter may do to the chain around it. */
export interface FilterContext {
  /** Sends a frame the filter consumed on through the filters after it (QEMU's qemu_netfilter_pass_to_next). */
  passOn(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number): void;
  /** Asks the controller for a checkpoint (control event CHECKPOINT_REQUEST). */
  requestCheckpoint(cause: string, detail: Record<string, unknown>): void;
  /** Stops (true) or resumes (false) reading the guest side: nothing is dropped meanwhile. */
  holdGuest(on: boolean): void;
  /** The same for the network side. */
  holdNetwork(on: boolean): void;
  /** A control event of the filter's own (EPOCH_COMMITTED …). */
  emit(event: string, data: Record<string, unknown>): void;
  /** The filter cannot go on (its log failed): the chain stops and the command exits with this error. */
  fatal(err: NetrrError): void;
}

export type FilterCommand = (args: Record<string, unknown>, nowMs: number) => unknown;

export interface Filter {
  readonly kind: string;
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  receive(dir: FilterDirection, frame: Uint8Array, vnetHdrLen: number, nowMs: number): FilterResult;
  /** Called when status changes (a buffer flushes when turned off, as filter-buffer does). */
  statusChanged?(nowMs: number): void;
  /** COLO events; without it the runtime applies QEMU's default (failover → status off). */
  colo?(event: ColoEvent, nowMs: number): void;
  /** Period of tick() in ms, when the filter has a timer. */
  readonly tickMs?: number | undefined;
  tick?(nowMs: number): void;
  /** Control commands this filter answers, by name. */
  readonly commands: Record<string, FilterCommand>;
  /** Counters and state for query-filters. */
  report(): Record<string, unknown>;
  /** Only the counters (and gauges such as backlog), for query-counters and metrics. */
  counterTree(): CounterTree;
  /** Opens what the filter needs (its endpoints), before the chain's own sides start. */
  start?(): Promise<void>;
  /** At shutdown, first: release or drop what it holds, by its policy (a log drains its writes). */
  shutdown?(nowMs: number): void | Promise<void>;
  /** At shutdown, after every filter's shutdown and the ports' flush: release its resources (files). */
  close?(): Promise<void> | void;
  /** SIGHUP: reopen the files it writes (a dump's pcapng). */
  reopen?(): Promise<void>;
}

/** A frame's direction and vnet length packed into one number for queues that hold both directions. */
export function packMeta(dir: FilterDirection, vnetHdrLen: number): number {
  return (vnetHdrLen << 1) | (dir === 'tx' ? 1 : 0);
}

export function metaDir(meta: number): FilterDirection {
  return (meta & 1) === 1 ? 'tx' : 'rx';
}

export function metaVnet(meta: number): number {
  return meta >>> 1;
}
