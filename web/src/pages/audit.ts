import { ApiError, call, query } from '../api.js';
import { h, replace } from '../dom.js';
import { updateParams, type Route } from '../route.js';
import { pager } from '../widgets.js';

interface AuditRow {
  time: string;
  principal: string;
  address: string;
  action: string;
  repository?: string;
  reference?: string;
  decision: 'allowed' | 'denied';
  rule?: string;
  reason?: string;
  method?: string;
  status?: number;
}

interface AuditPage {
  kept: boolean;
  why?: string;
  truncated?: boolean;
  items: AuditRow[];
  page: number;
  n: number;
  total: number;
}

const FIELDS = ['user', 'action', 'repository', 'decision', 'since', 'until'] as const;
type Field = (typeof FIELDS)[number];

/** A `datetime-local` value (local time) as the UTC instant the API filters by. */
function toIso(local: string): string | undefined {
  if (!local) return undefined;
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/** The audit log page (`#/audit`): filters and paging done by the server; only administrators get rows. */
export function auditPage(main: HTMLElement, route: Route): void {
  const state: Record<Field, string> & { page: number } = {
    user: route.params.get('user') ?? '',
    action: route.params.get('action') ?? '',
    repository: route.params.get('repository') ?? '',
    decision: route.params.get('decision') ?? '',
    since: route.params.get('since') ?? '',
    until: route.params.get('until') ?? '',
    page: Number(route.params.get('page') ?? '1') || 1,
  };
  const input = (f: Field, label: string, attrs: Record<string, string> = {}) => {
    const el = h('input', { id: `audit-${f}`, name: f, value: state[f], autocomplete: 'off', ...attrs });
    return [h('label', { for: `audit-${f}` }, label), el] as const;
  };
  const [userLabel, user] = input('user', 'User', { placeholder: 'alice, robot:ci, anonymous' });
  const action = h(
    'select',
    { id: 'audit-action', name: 'action' },
    ...['', 'pull', 'push', 'overwrite', 'delete', 'list', 'login', 'jobs', 'jobs.run', 'audit'].map((a) =>
      h('option', { value: a, selected: a === state.action }, a || 'Any action'),
    ),
  );
  const [repoLabel, repository] = input('repository', 'Repository', { placeholder: 'contains…' });
  const decision = h(
    'select',
    { id: 'audit-decision', name: 'decision' },
    ...[
      ['', 'Allowed or denied'],
      ['allowed', 'Allowed'],
      ['denied', 'Denied'],
    ].map(([v, t]) => h('option', { value: v!, selected: v === state.decision }, t!)),
  );
  const [sinceLabel, since] = input('since', 'From', { type: 'datetime-local' });
  const [untilLabel, until] = input('until', 'To', { type: 'datetime-local' });
  const results = h('div', { class: 'results', 'aria-busy': 'true' });
  let seq = 0;
  const load = async () => {
    const params = { ...state, page: state.page > 1 ? state.page : undefined };
    updateParams('/audit', params);
    const mine = ++seq;
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await call<AuditPage>(
        'GET',
        `/api/v1/audit${query({
          user: state.user,
          action: state.action,
          repository: state.repository,
          decision: state.decision,
          since: toIso(state.since),
          until: toIso(state.until),
          page: state.page,
          n: 50,
        })}`,
      );
      if (mine !== seq) return;
      replace(
        results,
        data.kept ? null : h('p', { class: 'muted' }, `Nothing to show: ${data.why}.`),
        data.truncated ? h('p', { class: 'muted small' }, 'Only the newest 32 MB of the log are searched.') : null,
        table(data),
        pager(data.page, data.n, data.total, (p) => {
          state.page = p;
          void load();
        }),
      );
    } catch (e) {
      if (mine !== seq) return;
      const text =
        e instanceof ApiError && (e.status === 403 || e.status === 401)
          ? `Only administrators may see the audit log. ${e.message}`
          : (e as Error).message;
      replace(results, h('p', { class: 'error', role: 'alert' }, text));
    } finally {
      if (mine === seq) results.setAttribute('aria-busy', 'false');
    }
  };
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    userLabel,
    user,
    h('label', { for: 'audit-action' }, 'Action'),
    action,
    repoLabel,
    repository,
    h('label', { for: 'audit-decision' }, 'Decision'),
    decision,
    sinceLabel,
    since,
    untilLabel,
    until,
    h('button', { type: 'submit' }, 'Filter'),
  );
  const apply = () => {
    state.user = user.value.trim();
    state.action = action.value;
    state.repository = repository.value.trim();
    state.decision = decision.value;
    state.since = since.value;
    state.until = until.value;
    state.page = 1;
    void load();
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    apply();
  });
  // Lists apply at once; text fields on Enter or "Filter".
  for (const el of [action, decision, since, until]) el.addEventListener('change', apply);
  replace(main, h('h1', {}, 'Audit log'), form, results);
  void load();
}

function table(data: AuditPage): HTMLElement {
  if (data.items.length === 0) return h('p', { class: 'muted' }, 'No audit records match.');
  return h(
    'table',
    { class: 'list audit' },
    h('caption', { class: 'offscreen' }, 'Audit records, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Time', 'Who', 'Action', 'Repository', 'Decision', 'Rule', 'Reason'].map((c) =>
          h('th', { scope: 'col' }, c),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      ...data.items.map((r) =>
        h(
          'tr',
          {},
          h('td', { title: r.time }, new Date(r.time).toLocaleString()),
          h('td', { title: r.address }, r.principal),
          h('td', {}, r.action, r.method ? h('span', { class: 'muted small' }, ` ${r.method}`) : null),
          h(
            'td',
            {},
            r.repository ?? '—',
            r.reference
              ? h('span', { class: 'muted' }, `${r.reference.includes(':') ? '@' : ':'}${r.reference}`)
              : null,
          ),
          h(
            'td',
            {},
            h('span', { class: `badge ${r.decision === 'allowed' ? 'ok' : 'bad'}` }, r.decision),
            r.status ? h('span', { class: 'muted small' }, ` ${r.status}`) : null,
          ),
          h('td', {}, r.rule ?? '—'),
          h('td', {}, r.reason ?? ''),
        ),
      ),
    ),
  );
}
