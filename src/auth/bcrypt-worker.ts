// Runs bcrypt comparisons for the registry's main thread (see bcrypt-pool.ts): one job at a time.
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

parentPort!.on('message', (job: { id: number; password: string; hash: string }) => {
  try {
    parentPort!.postMessage({ id: job.id, ok: bcrypt.compareSync(job.password, job.hash) });
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  }
});
