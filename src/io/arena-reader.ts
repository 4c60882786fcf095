// Reading a stream socket into memory netrr manages, instead of Node's
// per-read buffers. Node's 'data' path allocates a fresh 64 KiB buffer for
// every read however few bytes arrive, and runs the Readable machinery per
// chunk. With net.Socket's `onread` option libuv reads straight into a buffer
// we hand it (bench/read-path.ts measures both).
//
// Two policies:
// - recycled: one buffer reused for every read. The chunk handed on is valid
//   only during the call: the consumer copies what it keeps (the compare
//   proxy, whose engine copies what it queues).
// - segmented: reads fill a segment front to back, a new one once the tail is
//   shorter than a read; views stay valid for as long as anyone keeps them
//   (the segment is then garbage), so the "views may be kept" contract holds.

import net from 'node:net';

/** Bytes per segment (segmented) or of the one buffer (recycled). */
export const ARENA_SEGMENT_BYTES = 256 * 1024;
/** A new segment once the current one has less room than this (Node's own read size). */
export const ARENA_MIN_READ_BYTES = 64 * 1024;

export type ArenaPolicy = 'recycled' | 'segmented';

/** The `onread` option of net.Socket / net.connect. */
export interface OnRead {
  readonly buffer: () => Uint8Array;
  readonly callback: (bytesWritten: number, buf: Uint8Array) => boolean;
}

export class ArenaReader {
  readonly onread: OnRead;
  /** Segments allocated so far (segmented) — 1 for recycled. */
  segments = 0;
  #segment: Uint8Array;
  #pos = 0;
  readonly #segmentBytes: number;

  constructor(policy: ArenaPolicy, onChunk: (chunk: Uint8Array) => void, segmentBytes = ARENA_SEGMENT_BYTES) {
    this.#segmentBytes = segmentBytes;
    this.#segment = this.#newSegment();
    const recycled = policy === 'recycled';
    this.onread = {
      buffer: recycled ? () => this.#segment : () => this.#tail(),
      callback: (n, buf) => {
        if (!recycled) this.#pos += n;
        onChunk(buf.subarray(0, n));
        // Pausing goes through socket.pause(), which stops the handle itself.
        return true;
      },
    };
  }

  #newSegment(): Uint8Array {
    this.segments++;
    this.#pos = 0;
    return unzeroedBytes(this.#segmentBytes);
  }

  #tail(): Uint8Array {
    if (this.#segment.length - this.#pos < ARENA_MIN_READ_BYTES) this.#segment = this.#newSegment();
    return this.#segment.subarray(this.#pos);
  }
}

/**
 * A plain Uint8Array over fresh memory that is not zero-filled (every byte
 * handed on is written first). Plain rather than a Buffer: a Uint8Array's
 * subarray, one per frame on the read path, costs about 28 ns against a Buffer's 36
 * (bench/views.ts).
 */
export function unzeroedBytes(n: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
}

/**
 * Moves an accepted socket onto a net.Socket that reads through `onread`.
 * Node (20 and 24) ignores `onread` in net.createServer, and documents no way
 * to give an accepted socket one; a socket built on the accepted handle takes
 * it (this is how Node itself hands sockets between processes). The server
 * must accept with pauseOnConnect, so no read has started. Returns null when
 * the runtime does not allow it; the caller then reads with 'data' events
 * (test/arena-reader.test.ts fails when that happens on a supported runtime).
 */
export function adoptWithOnread(sock: net.Socket, onread: OnRead): net.Socket | null {
  const holder = sock as unknown as { _handle?: unknown };
  const handle = holder._handle;
  if (handle === null || typeof handle !== 'object' || typeof (handle as { readStart?: unknown }).readStart !== 'function') return null;
  let adopted: net.Socket;
  try {
    adopted = new net.Socket({ handle, onread, readable: true, writable: true } as unknown as net.SocketConstructorOpts);
  } catch {
    return null;
  }
  // The first socket lets go of the handle; destroying it only settles the server's connection count.
  holder._handle = null;
  sock.destroy();
  return adopted;
}
