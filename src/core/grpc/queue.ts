/** An unbounded async queue: pushed items come out of one async iterator, in order. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private done = false;
  private error: unknown;
  private waiter: (() => void) | undefined;

  push(item: T): void {
    if (this.done) return;
    this.items.push(item);
    this.wake();
  }
  /** No more items; the iterator ends after the queued ones. */
  end(): void {
    this.done = true;
    this.wake();
  }
  /** The iterator throws `err` after the queued items. */
  fail(err: unknown): void {
    if (this.done) return;
    this.error = err;
    this.done = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length) {
        yield this.items.shift()!;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.done) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}
