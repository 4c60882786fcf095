// Appends frames to a pcapng file as they pass (the bridge's --capture, and
// later the recorder's export and compare's divergence reports). File writes
// are asynchronous and bounded: if the disk falls behind by more than
// CAPTURE_MAX_PENDING_BYTES, frames are not captured and are counted.

import { open, type FileHandle } from 'node:fs/promises';
import { fromSystemError } from '../errors.ts';
import { type InterfaceSpec, type PacketMeta, PcapngWriter } from '../pcap/pcapng-writer.ts';
import { splitEpochMs } from '../pcap/timestamp.ts';

export const CAPTURE_MAX_PENDING_BYTES = 64 * 1024 * 1024;

export class CaptureSink {
  readonly path: string;
  readonly writer: PcapngWriter;
  captured = 0;
  /** Frames not captured because the file fell behind. */
  droppedOverflow = 0;
  /** Frames not captured because a write failed (the first error stops capturing). */
  droppedWriteError = 0;
  error: Error | null = null;
  /** Times the file was reopened (SIGHUP). */
  reopened = 0;
  #fh: FileHandle;
  #inFlight = 0;
  #writing: Promise<void> = Promise.resolve();
  #flushScheduled = false;

  private constructor(path: string, fh: FileHandle, writer: PcapngWriter) {
    this.path = path;
    this.#fh = fh;
    this.writer = writer;
  }

  static async create(path: string, section: { userAppl?: string; comment?: string } = {}): Promise<CaptureSink> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'w', 0o644);
    } catch (e) {
      throw fromSystemError(e, path);
    }
    return new CaptureSink(path, fh, new PcapngWriter(section));
  }

  addInterface(spec: InterfaceSpec): number {
    return this.writer.addInterface(spec);
  }

  readonly #ts = { sec: 0, nsec: 0 };

  /** Captures `data` on interface `interfaceId` at `atMs` (epoch milliseconds). */
  write(interfaceId: number, atMs: number, data: Uint8Array, meta?: PacketMeta, originalLength = data.length): void {
    if (this.error !== null) {
      this.droppedWriteError++;
      return;
    }
    if (this.#inFlight + this.writer.out.fill > CAPTURE_MAX_PENDING_BYTES) {
      this.droppedOverflow++;
      return;
    }
    splitEpochMs(atMs, this.#ts);
    this.writer.writePacket(interfaceId, this.#ts.sec, this.#ts.nsec, data, originalLength, meta);
    this.captured++;
    if (this.writer.out.shouldFlush) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
  }

  #flush(): void {
    const chunk = this.writer.out.take();
    if (chunk === null) return;
    this.#inFlight += chunk.length;
    this.#writing = this.#writing.then(async () => {
      try {
        if (this.error === null) await this.#fh.write(chunk);
      } catch (e) {
        this.error = e as Error;
      } finally {
        this.#inFlight -= chunk.length;
      }
    });
  }

  /**
   * Continues in a new file at the same path (SIGHUP, after logrotate moved
   * the old one): what was captured goes to the old file, then the new one
   * starts with the section header and the interfaces.
   */
  async reopen(): Promise<void> {
    this.#flush();
    this.#writing = this.#writing.then(async () => {
      try {
        await this.#fh.close();
        this.#fh = await open(this.path, 'w', 0o644);
        this.error = null;
      } catch (e) {
        this.error = e as Error;
      }
    });
    await this.#writing;
    this.writer.restartSection();
    this.reopened++;
    this.#flush();
    await this.#writing;
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#writing;
    await this.#fh.close();
  }

  status(): Record<string, unknown> {
    return {
      path: this.path,
      captured: this.captured,
      droppedOverflow: this.droppedOverflow,
      droppedWriteError: this.droppedWriteError,
      reopened: this.reopened,
      error: this.error?.message ?? null,
    };
  }
}
