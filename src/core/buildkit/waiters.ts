/** Callers waiting (with a timeout) for something to appear under a key: a session, a job. */
export class Waiters<K> {
  private lists = new Map<K, (() => void)[]>();

  /** Resolves when {@link wake} is called for `key`, or after `ms`, whichever is first. */
  wait(key: K, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const list = this.lists.get(key) ?? [];
      this.lists.set(key, list);
      const wake = () => {
        clearTimeout(t);
        resolve();
      };
      // On timeout the waiter is dropped, and the list with it when it was the last.
      const t = setTimeout(() => {
        const i = list.indexOf(wake);
        if (i >= 0) list.splice(i, 1);
        if (!list.length && this.lists.get(key) === list) this.lists.delete(key);
        resolve();
      }, ms);
      list.push(wake);
    });
  }

  /** Wake everyone waiting for `key`. */
  wake(key: K): void {
    const list = this.lists.get(key);
    this.lists.delete(key);
    for (const w of list ?? []) w();
  }
}
