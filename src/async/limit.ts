/** Runs at most `n` tasks at a time; returns a function that queues one. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * `fn` on every item, at most `n` at a time, results in the items' order. Items are taken one by one as calls
 * finish, so a list of 100,000 digests holds 16 promises, not 100,000. After a failure no new call starts; the
 * calls already started are awaited before the first error is thrown, so nothing runs on after the caller moved on.
 */
export async function mapLimited<T, R>(items: Iterable<T>, n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  const it = items[Symbol.iterator]();
  let index = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failure) return;
      const next = it.next();
      if (next.done) return;
      const i = index++;
      try {
        out[i] = await fn(next.value);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, n) }, worker));
  if (failure) throw failure.error;
  return out;
}
