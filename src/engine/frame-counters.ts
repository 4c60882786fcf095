// Frame accounting for one endpoint. Every frame that enters is delivered or
// dropped with a named reason; every frame handed to send() is written or
// dropped with a named reason. Plain numeric fields: incrementing one costs
// nothing on the hot path, and the control socket reads them as JSON.

export const RX_DROP_REASONS = ['zeroLength', 'badVnetHdr', 'tooLong', 'tornRecord'] as const;
export const TX_DROP_REASONS = ['noPeer', 'backpressure', 'tooLong', 'writeError', 'closed', 'tapRefused'] as const;

export type RxDropReason = (typeof RX_DROP_REASONS)[number];

/** Sum of an object's own numeric fields: the total of a reason-by-field counter set, whatever fields it grows. */
export function sumFields(o: object): number {
  let n = 0;
  for (const v of Object.values(o)) if (typeof v === 'number') n += v;
  return n;
}
export type TxDropReason = (typeof TX_DROP_REASONS)[number];

export class RxDrops {
  /** `len = 0` records (counted, never delivered). */
  zeroLength = 0;
  /** vnet_hdr_len larger than the record. */
  badVnetHdr = 0;
  /** Oversized length or datagram: the stream is closed, the record is gone. */
  tooLong = 0;
  /** The peer vanished with a record partly received. */
  tornRecord = 0;
}

export class TxDrops {
  /** No peer connected (QEMU's socket chardev drops the same way). */
  noPeer = 0;
  /** The peer did not keep up and the send queue hit its hard limit. */
  backpressure = 0;
  /** Larger than the endpoint's frame limit, or empty. */
  tooLong = 0;
  /** Queued, then the connection failed before the kernel took it. */
  writeError = 0;
  /** send() after close(). */
  closed = 0;
  /** Written to the tap helper, refused by the kernel's tap (runt, device down). */
  tapRefused = 0;
}

export class EndpointCounters {
  rxFrames = 0;
  rxBytes = 0;
  readonly rxDrops = new RxDrops();
  /** Bytes discarded after a framing error until the connection closed. */
  rxDiscardedBytes = 0;
  /** Frames confirmed written to the kernel. */
  txFrames = 0;
  txBytes = 0;
  /** Frames accepted by send() and not yet confirmed or dropped. */
  txQueuedFrames = 0;
  readonly txDrops = new TxDrops();
  framingErrors = 0;
  connects = 0;
  disconnects = 0;
  /** Extra peers turned away by a server that already has one (QEMU accepts one at a time). */
  rejectedPeers = 0;

  rxDropped(): number {
    return sumFields(this.rxDrops);
  }

  txDropped(): number {
    return sumFields(this.txDrops);
  }

  toJSON(): Record<string, unknown> {
    return {
      rxFrames: this.rxFrames,
      rxBytes: this.rxBytes,
      rxDrops: { ...this.rxDrops },
      rxDiscardedBytes: this.rxDiscardedBytes,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      txQueuedFrames: this.txQueuedFrames,
      txDrops: { ...this.txDrops },
      framingErrors: this.framingErrors,
      connects: this.connects,
      disconnects: this.disconnects,
      rejectedPeers: this.rejectedPeers,
    };
  }
}
