import { call, query } from '../api.js';
import { h, replace } from '../dom.js';
import { bytes, short } from '../format.js';
import { link, updateParams, type Route } from '../route.js';
import { pager } from '../widgets.js';

interface LifecycleRow {
  repository: string;
  bytes: number;
  exclusive?: number;
  shared?: number;
  governed: boolean;
  kept: number;
  deleting: { tag: string; digest: string; reason: string }[];
  keptBy: { tag: string; reason: string }[];
}

interface LifecyclePage {
  items: LifecycleRow[];
  page: number;
  n: number;
  total: number;
  readAt: string;
}

/** The lifecycle page (`#/lifecycle`): bytes per repository and what retention deletes next, per tag. */
export function lifecyclePage(main: HTMLElement, route: Route): void {
  const state = { q: route.params.get('q') ?? '', page: Number(route.params.get('page') ?? '1') || 1 };
  const search = h('input', {
    type: 'search',
    id: 'lifecycle-search',
    name: 'q',
    value: state.q,
    placeholder: 'Search repositories',
    autocomplete: 'off',
  });
  const results = h('div', { class: 'results', 'aria-busy': 'true' });
  let seq = 0;
  const load = async () => {
    updateParams('/lifecycle', { q: state.q, page: state.page > 1 ? state.page : undefined });
    const mine = ++seq;
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await call<LifecyclePage>('GET', `/api/v1/lifecycle${query({ q: state.q, page: state.page })}`);
      if (mine !== seq) return;
      replace(
        results,
        h('p', { class: 'muted small' }, `As the collector would judge at ${new Date(data.readAt).toLocaleString()}.`),
        table(data),
        pager(data.page, data.n, data.total, (p) => {
          state.page = p;
          void load();
        }),
      );
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
  replace(
    main,
    h('h1', {}, 'Lifecycle'),
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      h('label', { for: 'lifecycle-search' }, 'Search'),
      search,
    ),
    results,
  );
  void load();
}

function table(data: LifecyclePage): HTMLElement {
  if (data.items.length === 0) return h('p', { class: 'muted' }, 'No repositories to show.');
  const shares = data.items.some((r) => r.exclusive !== undefined);
  const heads = ['Repository', 'Size', ...(shares ? ['Only here', 'Shared'] : []), 'Kept', 'Deleted next'];
  return h(
    'table',
    { class: 'list' },
    h('caption', { class: 'offscreen' }, 'Usage and retention per repository, largest first'),
    h('thead', {}, h('tr', {}, ...heads.map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      ...data.items.map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, h('a', { href: link('/repo', { name: r.repository }) }, r.repository)),
          h('td', { class: 'num' }, bytes(r.bytes)),
          shares ? h('td', { class: 'num' }, bytes(r.exclusive)) : null,
          shares ? h('td', { class: 'num' }, bytes(r.shared)) : null,
          h(
            'td',
            { class: 'num', title: r.keptBy.map((k) => `${k.tag}: ${k.reason}`).join('\n') },
            r.governed ? String(r.kept) : '—',
          ),
          h(
            'td',
            {},
            !r.governed
              ? h('span', { class: 'muted' }, 'no rule governs it')
              : r.deleting.length === 0
                ? h('span', { class: 'muted' }, 'nothing')
                : h(
                    'ul',
                    { class: 'names' },
                    ...r.deleting.map((d) =>
                      h(
                        'li',
                        {},
                        h('span', { class: 'badge bad' }, d.tag),
                        ' ',
                        h('code', { title: d.digest }, short(d.digest)),
                        ' ',
                        h('span', { class: 'muted' }, d.reason),
                      ),
                    ),
                  ),
          ),
        ),
      ),
    ),
  );
}
