// Pauses a set of input endpoints while any of several named holds is on:
// an output port that cannot keep up, a log that fell behind, a buffer in
// backpressure mode. Holds are named so that one reason ending (an output
// drained) never resumes reading that another reason (the log) still needs
// paused. A port's hold follows its peer's life: released when the peer
// leaves, since its queued bytes left with it (issue 8 item 1).

import type { FrameEndpoint } from '../io/frame-endpoint.ts';
import type { Port } from './port.ts';

export class PauseGroup {
  readonly sources: readonly FrameEndpoint[];
  /** Times the sources were paused. */
  pauses = 0;
  #holds = new Set<string>();

  constructor(sources: readonly FrameEndpoint[]) {
    this.sources = sources;
  }

  get paused(): boolean {
    return this.#holds.size > 0;
  }

  hold(reason: string): void {
    if (this.#holds.has(reason)) return;
    this.#holds.add(reason);
    if (this.#holds.size === 1) {
      this.pauses++;
      for (const s of this.sources) s.pause();
    }
  }

  release(reason: string): void {
    if (!this.#holds.delete(reason)) return;
    if (this.#holds.size === 0) for (const s of this.sources) s.resume();
  }

  /** Holds while `port` is congested, under the port's name. */
  watch(port: Port): void {
    port.congestion.on((congested) => (congested ? this.hold(port.name) : this.release(port.name)));
  }

  status(): { paused: boolean; holds: string[]; pauses: number } {
    return { paused: this.paused, holds: [...this.#holds], pauses: this.pauses };
  }
}
