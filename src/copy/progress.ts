import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import type { Descriptor } from '../oci/descriptor.js';
import type { BlobAction, CopyProgress } from './copy.js';

// The bars are drawn only on a terminal: the package is required then, not by every copy, sync or server.
const require = createRequire(import.meta.url);
let loaded: typeof cliProgress | undefined;
const cliProgressModule = (): typeof cliProgress => (loaded ??= require('cli-progress') as typeof cliProgress);

/** A progress reporter that must be stopped when the copy ends. */
export interface ProgressReporter extends CopyProgress {
  stop(): void;
}

/** Bytes in the units people read (`12.3 MB`). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function short(d: Descriptor): string {
  return d.digest.slice(0, 19);
}

/** One line per blob on `out` (logs, pipes, CI), warnings on the same stream. */
export function lineProgress(out: NodeJS.WritableStream): ProgressReporter {
  return {
    blobDone(d: Descriptor, action: BlobAction) {
      const verb = action === 'sent' ? 'copied' : action === 'mounted' ? 'mounted' : 'skipped (already there)';
      out.write(`blob ${d.digest} ${formatBytes(d.size)} ${verb}\n`);
    },
    blobRetry(d: Descriptor, e: Error) {
      out.write(`blob ${d.digest}: ${e.message}; retrying\n`);
    },
    compressed(from: Descriptor, to: Descriptor) {
      out.write(`blob ${from.digest} ${formatBytes(from.size)} compressed to ${to.digest} ${formatBytes(to.size)}\n`);
    },
    warn(message: string) {
      out.write(`warning: ${message}\n`);
    },
    stop() {},
  };
}

/** The bar set `barProgress` draws into; several copies (a mirror job's images) can share one. */
export function progressBars(out: NodeJS.WritableStream): cliProgress.MultiBar {
  const cp = cliProgressModule();
  return new cp.MultiBar(
    {
      stream: out,
      format: '{name} [{bar}] {percentage}% {done}/{size}',
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
    },
    cp.Presets.shades_classic,
  );
}

/**
 * Bars on a terminal: one per blob in flight and a total. Given a shared bar set, the total is named
 * `name` and stopping removes this copy's bars instead of ending the set.
 */
export function barProgress(
  out: NodeJS.WritableStream,
  shared?: { multi: cliProgress.MultiBar; name: string },
): ProgressReporter {
  const multi = shared?.multi ?? progressBars(out);
  const total = multi.create(0, 0, { name: shared?.name ?? 'total              ', done: '0 B', size: '0 B' });
  let totalSize = 0;
  let totalDone = 0;
  const bars = new Map<string, { bar: cliProgress.SingleBar; value: number }>();
  const updateTotal = () => total.update(totalDone, { done: formatBytes(totalDone), size: formatBytes(totalSize) });
  return {
    blobStart(d) {
      totalSize += d.size;
      total.setTotal(totalSize);
      bars.set(d.digest, {
        bar: multi.create(d.size, 0, { name: short(d), done: '0 B', size: formatBytes(d.size) }),
        value: 0,
      });
      updateTotal();
    },
    blobBytes(d, n) {
      const b = bars.get(d.digest);
      if (!b) return;
      b.value += n;
      totalDone += n;
      b.bar.update(b.value, { done: formatBytes(b.value) });
      updateTotal();
    },
    blobRetry(d) {
      const b = bars.get(d.digest);
      if (!b) return;
      totalDone -= b.value;
      b.value = 0;
      b.bar.update(0, { done: '0 B' });
    },
    blobDone(d, action) {
      const b = bars.get(d.digest);
      if (!b) return;
      if (action !== 'sent') totalDone += d.size - b.value;
      b.bar.update(d.size, { done: action === 'sent' ? formatBytes(d.size) : action });
      multi.remove(b.bar);
      bars.delete(d.digest);
      updateTotal();
    },
    warn(message) {
      multi.log(`warning: ${message}\n`);
    },
    stop() {
      if (!shared) return multi.stop();
      for (const b of bars.values()) multi.remove(b.bar);
      multi.remove(total);
    },
  };
}

/** Only warnings (`--quiet` keeps even those off, `--json` sends them with the summary). */
export function quietProgress(out?: NodeJS.WritableStream): ProgressReporter {
  return {
    warn(message: string) {
      out?.write(`warning: ${message}\n`);
    },
    stop() {},
  };
}
