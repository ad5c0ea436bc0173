import { ApiError, call, query } from '../api.js';
import { announce, h, replace, type Child } from '../dom.js';
import { ago } from '../format.js';
import { link, type Route } from '../route.js';
import { pager } from '../widgets.js';

type Counts = Record<'copied' | 'moved' | 'unchanged' | 'pruned' | 'refused' | 'errors', number>;

interface JobRow {
  name: string;
  images: string[];
  schedule: { every?: string; cron?: string; manual?: boolean };
  nextRun?: string;
  running: boolean;
  runs: number;
  lastRun?: { startedAt: string; finishedAt: string; ok: boolean; counts: Counts };
}

interface JobList {
  items: JobRow[];
  mayRun: boolean;
  why?: string;
}

interface Run {
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  ok: boolean;
  copied: string[];
  moved: string[];
  pruned: string[];
  refused: { image: string; reason: string }[];
  errors: { image: string; error: string }[];
  counts: Counts;
}

interface RunPage {
  job: string;
  running: boolean;
  items: Run[];
  page: number;
  n: number;
  total: number;
}

/** How often the page asks whether a run it started has finished, and for how long at most. */
const POLL_MS = 700;
const POLL_MAX = 200;

function scheduleText(s: JobRow['schedule']): string {
  return s.cron ? `cron ${s.cron}` : s.every ? `every ${s.every}` : 'only when started';
}

function countChips(c: Counts): HTMLElement {
  const shown: [keyof Counts, string][] = [
    ['copied', 'copied'],
    ['moved', 'followed'],
    ['unchanged', 'unchanged'],
    ['pruned', 'pruned'],
    ['refused', 'refused'],
    ['errors', 'errors'],
  ];
  return h(
    'span',
    { class: 'counts' },
    ...shown.map(([k, text]) =>
      h('span', { class: `badge${(k === 'refused' || k === 'errors') && c[k] ? ' bad' : ''}` }, `${c[k]} ${text}`),
    ),
  );
}

/** A message in place of the page: the server's refusal (403 for non-administrators) or another failure. */
function failure(e: unknown): HTMLElement {
  const text =
    e instanceof ApiError && (e.status === 403 || e.status === 401)
      ? `Only administrators may see mirror jobs. ${e.message}`
      : (e as Error).message;
  return h('p', { class: 'error', role: 'alert' }, text);
}

/**
 * Starts a run of a job (with the CSRF token, as every state-changing request); `started` gets when the newest
 * run before it started ('none' when there was none), so the page can tell the new one when it is listed.
 */
function runButton(job: string, started: (before: string) => void): HTMLButtonElement {
  const b = h('button', { type: 'button', 'aria-label': `Run job ${job} now` }, 'Run now');
  b.addEventListener('click', () => {
    b.disabled = true;
    call<{ latest?: string }>('POST', `/api/v1/jobs/${encodeURIComponent(job)}/run`).then(
      (r) => {
        announce(`Job ${job} started`);
        started(r.latest ?? 'none');
      },
      (e: Error) => {
        b.disabled = false;
        announce(e.message);
      },
    );
  });
  return b;
}

/** The mirror jobs page (`#/jobs`), or one job's runs (`#/jobs?job=name`). */
export function jobsPage(main: HTMLElement, route: Route): void {
  const job = route.params.get('job');
  if (job) {
    const after = route.params.get('after');
    runsPage(main, job, Number(route.params.get('page') ?? '1') || 1, after);
    return;
  }
  const results = h('div', { 'aria-busy': 'true' });
  replace(main, h('h1', {}, 'Mirror jobs'), results);
  call<JobList>('GET', '/api/v1/jobs').then(
    (data) => {
      results.setAttribute('aria-busy', 'false');
      replace(
        results,
        data.mayRun ? null : h('p', { class: 'muted' }, `Runs cannot be started: ${data.why}.`),
        jobTable(data),
      );
    },
    (e: unknown) => replace(results, failure(e)),
  );
}

function jobTable(data: JobList): HTMLElement {
  if (data.items.length === 0) return h('p', { class: 'muted' }, 'No mirror jobs are configured.');
  return h(
    'table',
    { class: 'list' },
    h('caption', { class: 'offscreen' }, 'Mirror jobs'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Job', 'Images', 'Schedule', 'Next run', 'Last run', ''].map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      ...data.items.map((j) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, h('a', { href: link('/jobs', { job: j.name }) }, j.name)),
          h('td', {}, j.images.join(', ')),
          h('td', {}, scheduleText(j.schedule)),
          h('td', { title: j.nextRun ?? '' }, j.nextRun ? new Date(j.nextRun).toLocaleString() : '—'),
          h(
            'td',
            {},
            j.running ? h('span', { class: 'badge' }, 'running') : null,
            j.lastRun ? lastRunCell(j.lastRun) : j.running ? null : 'never',
          ),
          h(
            'td',
            {},
            data.mayRun
              ? runButton(j.name, (before) => {
                  location.hash = link('/jobs', { job: j.name, after: before });
                })
              : null,
          ),
        ),
      ),
    ),
  );
}

function lastRunCell(r: NonNullable<JobRow['lastRun']>): HTMLElement {
  return h(
    'span',
    {},
    h('span', { class: `badge ${r.ok ? 'ok' : 'bad'}` }, r.ok ? 'ok' : 'errors'),
    ' ',
    h('span', { title: r.finishedAt }, ago(r.finishedAt)),
    ' ',
    countChips(r.counts),
  );
}

/** One job's runs, newest first, paged by the server; "Run now" waits for the new run and shows it. */
function runsPage(main: HTMLElement, job: string, page: number, after: string | null): void {
  const results = h('div', { 'aria-busy': 'true' });
  // `after`: when the newest run before one this page started began ('none' for none); null when it waits for none.
  const state = { page, after, polls: 0 };
  const load = async (): Promise<void> => {
    let data: RunPage;
    try {
      data = await call<RunPage>(
        'GET',
        `/api/v1/jobs/${encodeURIComponent(job)}/runs${query({ page: state.page, n: 10 })}`,
      );
    } catch (e) {
      replace(results, failure(e));
      return;
    }
    results.setAttribute('aria-busy', String(data.running));
    replace(
      results,
      data.running ? h('p', { class: 'muted' }, 'A run is under way…') : null,
      data.items.length === 0 ? h('p', { class: 'muted' }, 'The job has not run yet.') : null,
      ...data.items.map(runView),
      pager(data.page, data.n, data.total, (p) => {
        state.page = p;
        void load();
      }),
    );
    if (state.after === null) return;
    // After "Run now": ask again until the run has finished and is listed first.
    const newest = state.page === 1 ? data.items[0]?.startedAt : undefined;
    const listed = newest !== undefined && newest !== state.after;
    if ((data.running || !listed) && state.polls++ < POLL_MAX) {
      window.setTimeout(() => void load(), POLL_MS);
      return;
    }
    state.after = null;
    button.disabled = false;
    announce(`Job ${job} finished a run`);
  };
  const button = runButton(job, (before) => {
    state.after = before;
    state.polls = 0;
    state.page = 1;
    void load();
  });
  replace(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, 'Mirror jobs'), ' / '),
    h('h1', {}, `Job ${job}`),
    h('p', {}, button),
    results,
  );
  if (after !== null) button.disabled = true;
  void load();
}

function names(title: string, items: Child[][]): HTMLElement | null {
  if (items.length === 0) return null;
  return h('div', {}, h('h3', {}, title), h('ul', { class: 'names' }, ...items.map((x) => h('li', {}, ...x))));
}

function runView(r: Run): HTMLElement {
  return h(
    'article',
    { class: 'run', 'aria-label': `Run started ${r.startedAt}` },
    h(
      'p',
      { class: 'heading' },
      h('span', { class: `badge ${r.ok ? 'ok' : 'bad'}` }, r.ok ? 'ok' : 'errors'),
      r.dryRun ? h('span', { class: 'badge' }, 'dry run') : null,
      h('span', { title: r.startedAt }, `started ${new Date(r.startedAt).toLocaleString()}`),
      h('span', { title: r.finishedAt }, `finished ${ago(r.finishedAt)}`),
      countChips(r.counts),
    ),
    names(
      'Copied',
      r.copied.map((x) => [h('code', {}, x)]),
    ),
    names(
      'Followed (tag moved upstream)',
      r.moved.map((x) => [h('code', {}, x)]),
    ),
    names(
      'Pruned',
      r.pruned.map((x) => [h('code', {}, x)]),
    ),
    names(
      'Refused',
      r.refused.map((x) => [h('code', {}, x.image), ': ', h('span', { class: 'reason' }, x.reason)]),
    ),
    names(
      'Errors',
      r.errors.map((x) => [h('code', {}, x.image), ': ', h('span', { class: 'error' }, x.error)]),
    ),
  );
}
