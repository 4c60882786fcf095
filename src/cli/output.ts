// Buffered line output for commands that print one line per packet: lines
// are joined into ~64 KiB writes, backpressure from stdout is respected, and
// a closed pipe (`| head`) ends the command quietly instead of crashing it.

const FLUSH_CHARS = 64 * 1024;

export class LineOutput {
  #buf = '';
  #stream: NodeJS.WritableStream;
  #closed = false;
  #drain: Promise<void> | null = null;

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.#stream = stream;
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') this.#closed = true;
      else throw e;
    });
  }

  /** True once the reader went away: callers may stop producing. */
  get closed(): boolean {
    return this.#closed;
  }

  line(text: string): void {
    if (this.#closed) return;
    this.#buf += text;
    this.#buf += '\n';
    if (this.#buf.length >= FLUSH_CHARS) this.#flushSync();
  }

  #flushSync(): void {
    const ok = this.#stream.write(this.#buf);
    this.#buf = '';
    if (!ok && this.#drain === null) {
      this.#drain = new Promise((resolve) => this.#stream.once('drain', () => {
        this.#drain = null;
        resolve();
      }));
    }
  }

  /** Waits while stdout is congested (call between chunks of work). */
  async settle(): Promise<void> {
    if (this.#drain !== null) await this.#drain;
  }

  async end(): Promise<void> {
    if (this.#buf !== '' && !this.#closed) this.#flushSync();
    await this.settle();
  }
}

/** A one-line progress indicator, shown only on a TTY stderr. */
export class Progress {
  #last = 0;
  #active = process.stderr.isTTY === true;
  #label: string;

  constructor(label: string) {
    this.#label = label;
  }

  update(done: number, total: number): void {
    if (!this.#active) return;
    const now = Date.now();
    if (now - this.#last < 200) return;
    this.#last = now;
    const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
    process.stderr.write(`\r${this.#label}: ${(done / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MiB (${pct}%)`);
  }

  done(): void {
    if (this.#active && this.#last !== 0) process.stderr.write('\r\x1b[K');
  }
}
