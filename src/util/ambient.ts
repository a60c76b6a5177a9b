/**
 * A value that is current while a function runs, as the clock ops report to and the engine they
 * run on are: set for the call, restored after it (so runs nest), null outside any.
 */
export class Ambient<T> {
  current: T | null = null;

  run<R>(value: T | null, fn: () => R): R {
    const outer = this.current;
    this.current = value;
    try {
      return fn();
    } finally {
      this.current = outer;
    }
  }
}
