// Frames for tests: the builder is src/packet/frame-builder.ts (checksums
// filled in by the code under test's own checksum module, verified
// independently by tshark in the interop tests).

import { buildFrame } from '../../src/packet/frame-builder.ts';

export { type FrameSpec, buildFrame } from '../../src/packet/frame-builder.ts';

/** The two ends of the TCP segments the rewriter's tests and bench send: a client outside and the guest. */
export const TCP_CLIENT = { mac: '52:55:0a:00:02:02', ip: '192.0.2.9' };
export const TCP_GUEST = { mac: '52:54:00:12:34:56', ip: '10.0.2.15' };

/**
 * A TCP segment between TCP_CLIENT and TCP_GUEST; `fromClient` goes toward
 * the guest. `ports` is [client port, guest port].
 */
export function clientGuestSegment(fromClient: boolean, flags: number, seq: number, ack: number, payload: Uint8Array | string = '', ports: readonly [number, number] = [40000, 80]): Uint8Array {
  const [a, b] = fromClient ? [TCP_CLIENT, TCP_GUEST] : [TCP_GUEST, TCP_CLIENT];
  const [sp, dp] = fromClient ? ports : [ports[1], ports[0]];
  return buildFrame({ src: a.mac, dst: b.mac, ipSrc: a.ip, ipDst: b.ip, proto: 'tcp', srcPort: sp, dstPort: dp, seq, ack, tcpFlags: flags, payload });
}
