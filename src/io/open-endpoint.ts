// Builds the right endpoint for a spec.

import { DgramEndpoint } from './dgram-endpoint.ts';
import { type EndpointSpec, parseEndpointSpec } from './endpoint-spec.ts';
import type { FrameEndpoint } from './frame-endpoint.ts';
import { StreamEndpoint, type StreamEndpointOptions } from './stream-endpoint.ts';

export function createEndpoint(spec: EndpointSpec | string, options: StreamEndpointOptions = {}): FrameEndpoint {
  const s = typeof spec === 'string' ? parseEndpointSpec(spec) : spec;
  if (s.kind === 'udp') {
    const o: { name?: string; maxFrameBytes?: number } = {};
    if (options.name !== undefined) o.name = options.name;
    if (options.maxFrameBytes !== undefined) o.maxFrameBytes = options.maxFrameBytes;
    return new DgramEndpoint(s, o);
  }
  return new StreamEndpoint(s, options);
}
