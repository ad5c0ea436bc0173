import type cliProgress from 'cli-progress';
import type { CopyProgress } from '../copy/copy.js';
import { barProgress, formatBytes, progressBars, type ProgressReporter } from '../copy/progress.js';
import type { PlanStep, RunProgress } from './job.js';

/** A run's progress as `sluice sync` shows it, ended once the job is done. */
export interface JobProgress extends RunProgress {
  /** Prints a line without breaking the bars. */
  log(line: string): void;
  stop(): void;
}

const DONE_WORDS: Record<PlanStep['action'], string> = {
  copy: 'copied',
  move: 'followed',
  unchanged: 'unchanged',
  prune: 'pruned',
  refused: 'refused',
  error: 'failed',
};

/** One set of bars on a terminal that the jobs of a run share (jobs run side by side). */
export interface RunBars {
  readonly multi: cliProgress.MultiBar;
  /** Prints text (ending in a newline) above the bars without breaking them. */
  log(text: string): void;
  stop(): void;
}

/** The bar set of a run, for `jobBars` of each of its jobs. */
export function runBars(out: NodeJS.WritableStream): RunBars {
  const multi = progressBars(out);
  return {
    multi,
    log: (text) => multi.log(text),
    stop: () => {
      // stop() drops lines still waiting for the next redraw: draw once more first.
      multi.update();
      multi.stop();
    },
  };
}

/**
 * Bars on a terminal: the job's images (done of selected), and under it each image being copied with a
 * bar per blob in flight (the copy engine's bars, sharing one bar set). With `shared`, the job's line joins
 * the run's set and stays there.
 */
export function jobBars(out: NodeJS.WritableStream, job: string, shared?: RunBars): JobProgress {
  const multi: cliProgress.MultiBar = shared?.multi ?? progressBars(out);
  let total = 0;
  let done = 0;
  const bar = multi.create(0, 0, { name: `job ${job}`, done: '0', size: '0 images' });
  const update = () => {
    bar.setTotal(Math.max(total, 1));
    bar.update(done, { done: String(done), size: `${total} images` });
  };
  // Images copied side by side each have a bar with their blobs under it.
  const copying = new Map<string, ProgressReporter>();
  return {
    images(n) {
      total += n;
      update();
    },
    copying(image) {
      const bars = barProgress(out, { multi, name: image });
      copying.set(image, bars);
      return bars;
    },
    imageDone(image) {
      copying.get(image)?.stop();
      copying.delete(image);
      done++;
      if (done > total) total = done;
      update();
    },
    log(line) {
      multi.log(`${line}\n`);
    },
    stop() {
      for (const bars of copying.values()) bars.stop();
      // A shared set keeps the job's line, at its final count, until the run's bars stop.
      if (!shared) multi.stop();
    },
  };
}

/** Plain lines for logs and pipes: one per image done, `[done/selected]`, with what its blobs cost. */
export function jobLines(out: NodeJS.WritableStream, job: string): JobProgress {
  let total = 0;
  let done = 0;
  const blobs = new Map<string, { sent: number; bytes: number; mounted: number; skipped: number }>();
  return {
    images(n) {
      total += n;
    },
    copying(image): CopyProgress {
      const c = { sent: 0, bytes: 0, mounted: 0, skipped: 0 };
      blobs.set(image, c);
      return {
        blobDone(d, action) {
          if (action === 'sent') {
            c.sent++;
            c.bytes += d.size;
          } else if (action === 'mounted') c.mounted++;
          else c.skipped++;
        },
        blobRetry(d, e) {
          out.write(`${job}: ${image}: blob ${d.digest}: ${e.message}; retrying\n`);
        },
        warn(message) {
          out.write(`${job}: ${image}: warning: ${message}\n`);
        },
      };
    },
    imageDone(image, action) {
      done++;
      if (done > total) total = done;
      const c = blobs.get(image);
      blobs.delete(image);
      const cost = c
        ? ` (blobs: ${c.sent} sent ${formatBytes(c.bytes)}, ${c.mounted} mounted, ${c.skipped} already there)`
        : '';
      out.write(`${job}: [${done}/${total}] ${DONE_WORDS[action]} ${image}${cost}\n`);
    },
    log(line) {
      out.write(`${line}\n`);
    },
    stop() {},
  };
}
