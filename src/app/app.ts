// The contract every composition implements (bridge, recorder, chain, compare
// proxy, replayer), so one runner serves them all: the CLI's service runner
// today, the daemon's instances later. Like undici's Dispatcher: the runner
// knows only this, never an app's class.

import type { NetrrError } from '../errors.ts';
import type { CounterTree } from '../engine/counter-tree.ts';
import type { Listeners } from '../events.ts';
import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import { endpointControlEvent } from '../io/frame-endpoint.ts';

/** A control-socket event: NAME_IN_CAPITALS and its data. Names ending in _ERROR are errors (the runner rate-limits them to stderr). */
export interface AppEvent {
  readonly name: string;
  readonly data: Record<string, unknown>;
}

export interface AppCommand {
  readonly help: string;
  readonly handler: (args: Record<string, unknown>) => unknown;
}

export interface App {
  /** What the app is ('chain', 'compare', …): names it in logs and status. */
  readonly kind: string;
  /** Lifecycle, COLO and error events, to any number of listeners. */
  readonly events: Listeners<AppEvent>;
  /** Control commands beyond the runner's own (query-status, query-counters, quit). */
  readonly commands: Readonly<Record<string, AppCommand>>;
  /** The runner sets it: the app calls it when it cannot go on (the runner stops it and exits with the error). */
  onFatal: (err: NetrrError) => void;
  start(): Promise<void>;
  /** Stops cleanly: held output follows its policy, ports flush (bounded), files close. Idempotent. */
  stop(): Promise<void>;
  /** State and configuration, for query-status: anything JSON. */
  status(): Record<string, unknown>;
  /** Every counter, and nothing else, as a tree (for query-counters and metrics). */
  counterTree(): CounterTree;
  /** SIGHUP: reopen the files it writes through a handle (pcapng captures), so logrotate can move them. */
  reopen?(): Promise<void>;
  /** For an app that ends by itself (replay): resolves with its exit status once it is done. */
  readonly finished?: Promise<number>;
}

/** Forwards every event of these endpoints into an app's events (ENDPOINT_CONNECTED …). */
export function forwardEndpoints(endpoints: readonly FrameEndpoint[], events: Listeners<AppEvent>): void {
  for (const ep of endpoints) {
    ep.events.on((e) => {
      const [name, data] = endpointControlEvent(e);
      events.emit({ name, data });
    });
  }
}
