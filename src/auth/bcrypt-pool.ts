import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Thrown when more password checks wait than the pool will queue. */
export class PoolBusyError extends Error {}

interface Job {
  id: number;
  password: string;
  hash: string;
  resolve(ok: boolean): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  job?: Job;
}

/**
 * bcrypt off the event loop: a cost-12 comparison is ~250 ms of CPU, and on the one JavaScript thread a few
 * clients sending wrong passwords would stall every other request. A few workers (1 or 2, leaving a core
 * for the server) take the jobs; the queue is bounded so a flood is refused instead of remembered.
 */
export class BcryptPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    readonly size = Math.max(1, Math.min(2, availableParallelism() - 1)),
    readonly maxQueue = 64,
  ) {}

  /** Compares a password with a bcrypt hash in a worker; throws PoolBusyError when the queue is full. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error('the password checker is closed'));
    if (this.queue.length >= this.maxQueue)
      return Promise.reject(new PoolBusyError('too many password checks are waiting'));
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, password, hash, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.job = job;
      // Referenced only while working: an idle pool must not keep a process alive, a busy one must.
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, password: job.password, hash: job.hash });
    }
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./bcrypt-worker.js', import.meta.url));
    const slot: Slot = { worker };
    worker.unref();
    worker.on('message', (m: { id: number; ok?: boolean; error?: string }) => {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      slot.job = undefined;
      worker.unref();
      if (m.error !== undefined) job.reject(new Error(`bcrypt: ${m.error}`));
      else job.resolve(Boolean(m.ok));
      this.pump();
    });
    // A worker that dies takes only its own job with it; the next job gets a fresh worker.
    const gone = (e: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const job = slot.job;
      slot.job = undefined;
      job?.reject(e);
      if (!this.closed) this.pump();
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the password checker stopped (exit ${code})`)));
    this.slots.push(slot);
    return slot;
  }

  /** Stops the workers; waiting and running checks fail. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('the password checker is closed');
    for (const j of this.queue.splice(0)) j.reject(err);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
