// Events with any number of listeners: an endpoint's events reach the port
// that paces it, the control socket and the stderr summary at once. Emitting
// with no listener costs a length check.

export class Listeners<T> {
  #fns: ((e: T) => void)[] = [];

  /** Adds a listener; returns the function that removes it. */
  on(fn: (e: T) => void): () => void {
    this.#fns = [...this.#fns, fn];
    return () => {
      this.#fns = this.#fns.filter((f) => f !== fn);
    };
  }

  emit(e: T): void {
    // The array is replaced, never mutated, so a listener may add or remove listeners safely.
    const fns = this.#fns;
    for (let i = 0; i < fns.length; i++) fns[i]!(e);
  }

  get size(): number {
    return this.#fns.length;
  }
}
