/**
 * Serialises async work per key within one process: a caller waits until every earlier holder of any of
 * its keys is done. Keys are taken in sorted order, so two callers wanting overlapping sets cannot deadlock.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` while holding every key in `keys` (duplicates allowed, an empty list holds nothing). */
  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const releases: (() => void)[] = [];
    try {
      for (const key of [...new Set(keys)].sort()) releases.push(await this.acquire(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** How many keys are held or waited for (for tests: the map must not grow without bound). */
  get size(): number {
    return this.tails.size;
  }

  private async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      // The last holder in line removes the key, so idle keys cost nothing.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}

/** A KeyedLock per owner (one per storage driver: two registries in one process on separate drivers do not share). */
export function lockPerOwner(): (owner: object) => KeyedLock {
  const locks = new WeakMap<object, KeyedLock>();
  return (owner) => {
    let l = locks.get(owner);
    if (!l) {
      l = new KeyedLock();
      locks.set(owner, l);
    }
    return l;
  };
}
