// Appends JSON lines to a report file in order (compare's divergence report,
// replay's). Writes are chained, so lines never interleave or reorder; a
// failed write is counted and handed to onError, never an unhandled
// rejection; close() waits for every line before it resolves. The file is
// opened per append (O_APPEND), so a rotated file is picked up by the next line.

import { appendFile } from 'node:fs/promises';

export class ReportWriter {
  readonly path: string;
  written = 0;
  errors = 0;
  #chain: Promise<void> = Promise.resolve();
  #onError: (err: Error) => void;

  constructor(path: string, onError: (err: Error) => void) {
    this.path = path;
    this.#onError = onError;
  }

  /** Appends one record as a JSON line (after every earlier one). */
  append(record: unknown): void {
    const line = `${JSON.stringify(record)}\n`;
    this.#chain = this.#chain.then(
      () =>
        appendFile(this.path, line).then(
          () => void this.written++,
          (err: unknown) => {
            this.errors++;
            this.#onError(err as Error);
          },
        ),
    );
  }

  /** Resolves once every appended line is written or has failed. */
  close(): Promise<void> {
    return this.#chain;
  }
}
