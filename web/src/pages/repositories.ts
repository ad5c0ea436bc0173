import { call, query } from '../api.js';
import { h, replace } from '../dom.js';
import { ago, bytes } from '../format.js';
import { link, updateParams, type Route } from '../route.js';
import { kindBadge, pager } from '../widgets.js';

interface RepoRow {
  name: string;
  kind: string;
  upstream?: string;
  job?: string;
  tags?: number;
  size?: number;
  lastPush?: string;
  pending?: boolean;
}

interface RepoPage {
  items: RepoRow[];
  page: number;
  n: number;
  total: number;
}

/** The repositories page: search, kind filter and paging, all done by the server. */
export function repositoriesPage(main: HTMLElement, route: Route): void {
  const state = {
    q: route.params.get('q') ?? '',
    kind: route.params.get('kind') ?? '',
    page: Number(route.params.get('page') ?? '1') || 1,
  };
  const search = h('input', {
    type: 'search',
    id: 'repo-search',
    name: 'q',
    value: state.q,
    placeholder: 'Search repositories',
    autocomplete: 'off',
  });
  const kind = h(
    'select',
    { id: 'repo-kind', name: 'kind' },
    ...[
      ['', 'All kinds'],
      ['local', 'Local'],
      ['cache', 'Cache'],
      ['mirror', 'Mirror'],
    ].map(([v, t]) => h('option', { value: v!, selected: v === state.kind }, t!)),
  );
  const results = h('div', { class: 'results', 'aria-busy': 'true' });
  let seq = 0;
  const load = async () => {
    updateParams('/', { q: state.q, kind: state.kind, page: state.page > 1 ? state.page : undefined });
    const mine = ++seq;
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await call<RepoPage>(
        'GET',
        `/api/v1/repositories${query({ q: state.q, kind: state.kind, page: state.page })}`,
      );
      if (mine !== seq) return;
      replace(
        results,
        table(data),
        pager(data.page, data.n, data.total, (p) => {
          state.page = p;
          void load();
        }),
      );
      // Sizes still being counted: asked again shortly, while this page is still the one shown.
      if (data.items.some((r) => r.pending))
        window.setTimeout(() => mine === seq && results.isConnected && void load(), 700);
    } catch (e) {
      if (mine === seq) replace(results, h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    } finally {
      if (mine === seq) results.setAttribute('aria-busy', 'false');
    }
  };
  let timer = 0;
  search.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      state.q = search.value.trim();
      state.page = 1;
      void load();
    }, 200);
  });
  kind.addEventListener('change', () => {
    state.kind = kind.value;
    state.page = 1;
    void load();
  });
  replace(
    main,
    h('h1', {}, 'Repositories'),
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      h('label', { for: 'repo-search' }, 'Search'),
      search,
      h('label', { for: 'repo-kind' }, 'Kind'),
      kind,
    ),
    results,
  );
  void load();
}

function table(data: RepoPage): HTMLElement {
  if (data.items.length === 0) return h('p', { class: 'muted' }, 'No repositories to show.');
  return h(
    'table',
    { class: 'list' },
    h('caption', { class: 'offscreen' }, 'Repositories'),
    h(
      'thead',
      {},
      h('tr', {}, ...['Name', 'Kind', 'Tags', 'Size', 'Last push'].map((c) => h('th', { scope: 'col' }, c))),
    ),
    h(
      'tbody',
      {},
      ...data.items.map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, h('a', { href: link('/repo', { name: r.name }) }, r.name)),
          h(
            'td',
            {},
            kindBadge(r.kind),
            r.upstream ? h('span', { class: 'muted' }, ` from ${r.upstream}`) : null,
            r.job ? h('span', { class: 'muted' }, ` job ${r.job}`) : null,
          ),
          h('td', { class: 'num' }, r.pending ? '…' : String(r.tags ?? 0)),
          h('td', { class: 'num' }, r.pending ? '…' : bytes(r.size)),
          h('td', { title: r.lastPush ?? '' }, r.pending ? '…' : ago(r.lastPush)),
        ),
      ),
    ),
  );
}
