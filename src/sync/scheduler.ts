import { Cron } from 'croner';
import { parseDuration } from '../config/duration.js';
import type { MirrorJob } from './job.js';
import type { RunSummary } from './state.js';

/** Runs mirror jobs on their schedules inside `sluice serve`; a job never runs twice at once. */
export class SyncScheduler {
  private readonly timers: (() => void)[] = [];
  private readonly running = new Map<string, Promise<RunSummary>>();
  /** When each scheduled job is due next, for the web UI's jobs page. */
  private readonly next = new Map<string, () => Date | undefined>();
  private stopped = false;

  constructor(
    private readonly jobs: MirrorJob[],
    private readonly log: { info(o: object, msg: string): void; warn(o: object, msg: string): void },
    private readonly onRun?: (job: MirrorJob, summary: RunSummary | Error, ms: number) => void,
  ) {}

  private readonly cleanups: (() => Promise<void>)[] = [];

  /** Something to do once every run has ended at `stop` (close the jobs' shared connections). */
  onStop(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  /** The jobs this scheduler runs. */
  get all(): readonly MirrorJob[] {
    return this.jobs;
  }

  /** When a job runs next by its schedule (undefined without one, or once stopped). */
  nextRun(name: string): Date | undefined {
    return this.stopped ? undefined : this.next.get(name)?.();
  }

  /** Whether a run of the job is under way. */
  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  /** Runs a job now unless it is running already (then the run under way is returned). */
  runNow(job: MirrorJob): Promise<RunSummary> {
    const under = this.running.get(job.name);
    if (under) {
      this.log.info({ job: job.name }, `sync ${job.name}: still running; this turn is skipped`);
      return under;
    }
    const started = performance.now();
    const run = job.run().finally(() => this.running.delete(job.name));
    this.running.set(job.name, run);
    run.then(
      (s) => this.onRun?.(job, s, performance.now() - started),
      (e: Error) => {
        this.log.warn({ job: job.name, err: e.message }, `sync ${job.name}: run failed`);
        this.onRun?.(job, e, performance.now() - started);
      },
    );
    return run;
  }

  /** Starts every job that has `every` or `cron`. */
  start(): void {
    for (const job of this.jobs) {
      const { every, cron, jitter } = job.config;
      const jitterMs = jitter ? parseDuration(jitter) : 0;
      let pending: NodeJS.Timeout | undefined;
      // Jitter spreads jobs that share a schedule, so they do not all reach upstream in the same second.
      const tick = () => {
        if (this.stopped) return;
        const delay = jitterMs ? Math.floor(Math.random() * jitterMs) : 0;
        pending = setTimeout(() => void this.runNow(job).catch(() => undefined), delay);
        pending.unref();
      };
      if (cron) {
        const c = new Cron(cron, { protect: true }, tick);
        this.next.set(job.name, () => c.nextRun() ?? undefined);
        this.timers.push(() => {
          c.stop();
          clearTimeout(pending);
        });
      } else if (every) {
        const ms = parseDuration(every);
        let ticked = Date.now();
        const interval = setInterval(() => {
          ticked = Date.now();
          tick();
        }, ms);
        interval.unref();
        tick();
        this.next.set(job.name, () => new Date(ticked + ms));
        this.timers.push(() => {
          clearInterval(interval);
          clearTimeout(pending);
        });
      }
    }
  }

  /** Stops scheduling and waits for runs under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const cancel of this.timers.splice(0)) cancel();
    await Promise.allSettled([...this.running.values()]);
    for (const c of this.cleanups.splice(0)) await c();
  }
}
