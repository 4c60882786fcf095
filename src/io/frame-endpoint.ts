// The contract every frame endpoint (stream socket, datagram socket, later
// tap) offers to what sits on top of it: the compare proxy, the recorder,
// the filter chain. One frame in, one frame out, each accounted for.

import type { ErrorCode } from '../errors.ts';
import type { Listeners } from '../events.ts';
import type { EndpointCounters } from '../engine/frame-counters.ts';
import type { EndpointSpec } from './endpoint-spec.ts';

export type EndpointEventType = 'listening' | 'connected' | 'disconnected' | 'rejected-peer' | 'error';

export interface EndpointEvent {
  readonly type: EndpointEventType;
  readonly endpoint: string;
  readonly detail?: string;
  /** Stable error code for type 'error'. */
  readonly code?: ErrorCode;
}

export interface EndpointStatus {
  readonly name: string;
  readonly spec: string;
  readonly connected: boolean;
  readonly writable: boolean;
  readonly paused: boolean;
  /** Stream endpoints: how the current socket is read ('onread' into netrr's arena, or 'data' events). */
  readonly readPath?: string;
  /** Actual local address (e.g. the port picked for tcp:…:0). */
  readonly local: string | undefined;
  readonly peer: string | undefined;
  readonly counters: Record<string, unknown>;
}

export interface FrameEndpoint {
  readonly name: string;
  readonly spec: EndpointSpec;
  readonly counters: EndpointCounters;
  readonly vnetHdr: boolean;
  /**
   * Called for each received frame. The view may be kept (its chunk is never
   * reused), except from a stream endpoint made with borrowedFrames, whose
   * views are valid only during the call.
   */
  onFrame: (frame: Uint8Array, vnetHdrLen: number) => void;
  /**
   * Called before the frames of one read are handed to onFrame (a stream
   * read holds many): a consumer that needs the time reads the clock here,
   * once per read instead of once per frame.
   */
  onRead: () => void;
  /** Lifecycle and error events, to any number of listeners. */
  readonly events: Listeners<EndpointEvent>;
  /**
   * Called when the endpoint becomes writable again after it reported
   * pressure (writable false, or a send refused for backpressure). A peer
   * that disconnects takes its queued bytes with it, so the endpoint calls
   * this then too: pressure follows the peer's life (issue 8 item 1).
   */
  onDrain: () => void;
  readonly connected: boolean;
  /** Below the high-water mark: senders should pause their sources when false. */
  readonly writable: boolean;
  /** Listen (servers, datagram sockets) or start connecting (clients; does not wait). */
  start(): Promise<void>;
  /**
   * Queue one frame. Returns false when the frame was dropped (the reason is
   * counted); true when it was accepted. Never throws for bad frames.
   */
  send(frame: Uint8Array, vnetHdrLen: number): boolean;
  /** Stop and restart reading (backpressure toward the peer). */
  pause(): void;
  resume(): void;
  /** Resolves once a peer is connected (rejects after timeoutMs). */
  waitConnected(timeoutMs: number): Promise<void>;
  /** Flush whole records, then close. Never closes mid-record. */
  close(): Promise<void>;
  status(): EndpointStatus;
}

/** An endpoint event as a control-socket event: name ENDPOINT_<TYPE>, data with endpoint, detail and code. */
export function endpointControlEvent(e: EndpointEvent): [string, Record<string, unknown>] {
  const data: Record<string, unknown> = { endpoint: e.endpoint };
  if (e.detail !== undefined) data.detail = e.detail;
  if (e.code !== undefined) data.code = e.code;
  return [`ENDPOINT_${e.type.toUpperCase().replace('-', '_')}`, data];
}
