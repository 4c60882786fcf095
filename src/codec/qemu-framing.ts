// QEMU's socket packet framing (reference qemu-interop.md §1):
//   be32 len | [be32 vnet_hdr_len, only if the endpoint has vnet_hdr_support] | payload[len]
// Used by -netdev stream / socket (TCP) and by the chardevs of filter-mirror,
// filter-redirector and colo-compare.
//
// The decoder is an explicit state machine in the style of ws's receiver: it
// consumes each chunk in place, hands out subarray views of records that lie
// wholly inside a chunk, and copies only a record that straddles chunks (once,
// into a buffer of exactly its size). Pending data is never re-concatenated.

import { NetrrError } from '../errors.ts';
import { u32be, w32be } from './bytes.ts';

/** QEMU's NET_BUFSIZE = 4096 + 65536: the largest payload any QEMU reader accepts. */
export const NET_BUFSIZE_BYTES = 69632;
/** Length of one be32 header field. */
export const FRAMING_FIELD_BYTES = 4;

const STATE_LEN = 0;
const STATE_VNET = 1;
const STATE_DATA = 2;
const STATE_FAILED = 3;

export interface FrameDecoderOptions {
  /** Whether each record carries the be32 vnet_hdr_len field (not signalled on the wire). */
  readonly vnetHdr: boolean;
  /** Largest accepted payload; defaults to QEMU's 69632. */
  readonly maxFrameBytes?: number;
}

/**
 * Receives each decoded record. `frame` includes the vnet header bytes when
 * `vnetHdrLen` > 0. The view may alias the pushed chunk: keep it only if the
 * chunk is not reused by the caller (Node socket chunks are never reused).
 */
export type FrameHandler = (frame: Uint8Array, vnetHdrLen: number) => void;

export class FrameDecoder {
  readonly vnetHdr: boolean;
  readonly maxFrameBytes: number;
  /** Records delivered to the handler. */
  records = 0;
  /** Payload bytes delivered (vnet header included). */
  bytes = 0;
  /** `len = 0` records: decoded and counted, never delivered. */
  zeroLengthRecords = 0;
  /** Records whose vnet_hdr_len exceeded their length: counted and skipped (framing stays intact). */
  badVnetRecords = 0;
  /** Bytes consumed from this connection's stream so far (for error offsets); reset() starts it again at 0. */
  streamOffset = 0;

  #handler: FrameHandler;
  #state = STATE_LEN;
  #fieldValue = 0;
  #fieldBytes = 0;
  #len = 0;
  #vnetLen = 0;
  #partial: Uint8Array | null = null;
  #partialFill = 0;
  #error: NetrrError | null = null;

  constructor(options: FrameDecoderOptions, handler: FrameHandler) {
    this.vnetHdr = options.vnetHdr;
    this.maxFrameBytes = options.maxFrameBytes ?? NET_BUFSIZE_BYTES;
    this.#handler = handler;
  }

  /** The fatal error that stopped this decoder, if any. */
  get error(): NetrrError | null {
    return this.#error;
  }

  /** True when no record is partly received: the stream may be closed here without tearing a record. */
  get atBoundary(): boolean {
    return this.#state === STATE_LEN && this.#fieldBytes === 0;
  }

  /** Bytes held for an incomplete record (bounded by maxFrameBytes + 8). */
  get pendingBytes(): number {
    if (this.#state === STATE_DATA) return this.#partialFill;
    return this.#fieldBytes;
  }

  /** Forget any partial record, as after a reconnect. Clears a previous error. */
  reset(): void {
    this.#state = STATE_LEN;
    this.#fieldValue = 0;
    this.#fieldBytes = 0;
    this.#partial = null;
    this.#partialFill = 0;
    this.#error = null;
    this.streamOffset = 0;
  }

  /**
   * Consume a chunk. Returns null, or the fatal error that stops the stream
   * (an oversized length). After an error every later push is ignored until
   * reset(): no later record can be misparsed.
   */
  push(chunk: Uint8Array): NetrrError | null {
    if (this.#state === STATE_FAILED) return this.#error;
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      const state = this.#state;
      if (state === STATE_DATA) {
        pos = this.#consumeData(chunk, pos, end);
        continue;
      }
      // Fast path: a whole be32 field inside this chunk.
      let value: number;
      if (this.#fieldBytes === 0 && end - pos >= 4) {
        value = u32be(chunk, pos);
        pos += 4;
      } else {
        this.#fieldValue = ((this.#fieldValue << 8) | chunk[pos]!) >>> 0;
        pos++;
        if (++this.#fieldBytes < 4) continue;
        value = this.#fieldValue;
        this.#fieldValue = 0;
        this.#fieldBytes = 0;
      }
      if (state === STATE_LEN) {
        if (value > this.maxFrameBytes) {
          return this.#fail(value, pos - 4);
        }
        this.#len = value;
        this.#vnetLen = 0;
        if (this.vnetHdr) {
          this.#state = STATE_VNET;
          continue;
        }
      } else {
        this.#vnetLen = value;
      }
      this.#beginData(chunk, pos);
    }
    this.streamOffset += end;
    return null;
  }

  #beginData(chunk: Uint8Array, pos: number): void {
    const len = this.#len;
    if (len === 0) {
      // Zero-length records are decoded and counted, never delivered (QEMU 7.2
      // asserts on them in colo-compare; we refuse to pass them on).
      this.zeroLengthRecords++;
      this.#state = STATE_LEN;
      return;
    }
    this.#state = STATE_DATA;
    this.#partialFill = 0;
    // Whole record in this chunk: no allocation, handled by #consumeData's view path.
    if (chunk.length - pos < len) this.#partial = new Uint8Array(len);
  }

  #consumeData(chunk: Uint8Array, pos: number, end: number): number {
    const len = this.#len;
    const partial = this.#partial;
    if (partial === null) {
      // Whole record is in this chunk (checked in #beginData).
      const stop = pos + len;
      this.#state = STATE_LEN;
      this.#deliver(chunk.subarray(pos, stop));
      return stop;
    }
    const want = len - this.#partialFill;
    const take = end - pos < want ? end - pos : want;
    partial.set(chunk.subarray(pos, pos + take), this.#partialFill);
    this.#partialFill += take;
    if (this.#partialFill === len) {
      this.#partial = null;
      this.#partialFill = 0;
      this.#state = STATE_LEN;
      this.#deliver(partial);
    }
    return pos + take;
  }

  #deliver(frame: Uint8Array): void {
    const vnetLen = this.#vnetLen;
    if (vnetLen > frame.length) {
      this.badVnetRecords++;
      return;
    }
    this.records++;
    this.bytes += frame.length;
    this.#handler(frame, vnetLen);
  }

  #fail(value: number, fieldPos: number): NetrrError {
    this.#state = STATE_FAILED;
    this.#partial = null;
    this.#error = new NetrrError(
      'ERR_FRAME_TOO_LONG',
      `record length ${value} exceeds the ${this.maxFrameBytes}-byte limit (stream offset ${this.streamOffset + fieldPos}); stream framing lost`,
      { offset: this.streamOffset + fieldPos },
    );
    return this.#error;
  }
}

/** Bytes one record occupies on the wire. */
export function recordWireBytes(frameLength: number, vnetHdr: boolean): number {
  return frameLength + (vnetHdr ? 8 : 4);
}

/**
 * Encodes one record into `target` at `offset`; returns the offset after it.
 * `vnetHdrLen` is written only when `vnetHdr` is set. The caller guarantees
 * room (recordWireBytes) and a non-empty frame (see assertEncodable).
 */
export function encodeRecordInto(
  target: Uint8Array,
  offset: number,
  frame: Uint8Array,
  vnetHdr: boolean,
  vnetHdrLen: number,
): number {
  w32be(target, offset, frame.length);
  offset += 4;
  if (vnetHdr) {
    w32be(target, offset, vnetHdrLen);
    offset += 4;
  }
  target.set(frame, offset);
  return offset + frame.length;
}

/** Rejects what must never go on the wire: an empty or oversized frame. */
export function assertEncodable(frame: Uint8Array, vnetHdrLen: number, maxFrameBytes = NET_BUFSIZE_BYTES): void {
  if (frame.length === 0) throw new NetrrError('ERR_PACKET_MALFORMED', 'refusing to encode an empty record');
  if (frame.length > maxFrameBytes) {
    throw new NetrrError('ERR_FRAME_TOO_LONG', `frame of ${frame.length} bytes exceeds the ${maxFrameBytes}-byte limit`);
  }
  if (vnetHdrLen > frame.length) {
    throw new NetrrError('ERR_VNET_HDR_TOO_LONG', `vnet header length ${vnetHdrLen} exceeds frame length ${frame.length}`);
  }
}

/** Encodes one record into a new buffer (convenience; hot paths batch with encodeRecordInto). */
export function encodeRecord(frame: Uint8Array, vnetHdr = false, vnetHdrLen = 0): Uint8Array {
  assertEncodable(frame, vnetHdrLen);
  const out = new Uint8Array(recordWireBytes(frame.length, vnetHdr));
  encodeRecordInto(out, 0, frame, vnetHdr, vnetHdrLen);
  return out;
}
