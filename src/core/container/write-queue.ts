/**
 * Writes to a container's input (a pipe or a pty master) in the order they were asked for, each
 * after the previous one completed, without blocking the event loop when the reader is slow.
 */
import { write } from "node:fs";

/** An ordered queue of writes. */
export class WriteQueue {
  private chain: Promise<void> = Promise.resolve();

  /** Queue `chunk` for `fd` (errors, such as a reader gone, end that write only). */
  write(fd: number, chunk: Uint8Array): void {
    this.chain = this.chain.then(() => new Promise<void>((resolve) => write(fd, chunk, () => resolve())));
  }

  /** Run `fn` once everything queued so far is written. */
  then(fn: () => void): void {
    void this.chain.then(fn);
  }
}
