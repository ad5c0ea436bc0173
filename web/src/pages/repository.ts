import { call, query } from '../api.js';
import { announce, h, replace } from '../dom.js';
import { ago, bytes } from '../format.js';
import { link, updateParams, type Route } from '../route.js';
import { digestCell, kindBadge, pager, platformChips, trustBadge, type TrustLike } from '../widgets.js';

interface TagRow {
  tag: string;
  digest: string;
  kind: string;
  size: number;
  platforms: { platform: string; size: number; present: boolean }[];
  pushed?: string;
  lastPulled?: string;
  accessories: number;
  trust: TrustLike;
}

interface TagPage {
  repository: string;
  kind: string;
  upstream?: string;
  job?: string;
  size: number;
  platforms: string[];
  mayDelete?: boolean;
  items: TagRow[];
  page: number;
  n: number;
  total: number;
}

const SORTS: [string, string][] = [
  ['name', 'Name'],
  ['pushed', 'Pushed'],
  ['size', 'Size'],
  ['pulled', 'Last pulled'],
];

/** A repository: one row per tag, sorted and filtered by the server. */
export function repositoryPage(main: HTMLElement, route: Route): void {
  const name = route.params.get('name') ?? '';
  const p = route.params;
  const state = {
    q: p.get('q') ?? '',
    sort: p.get('sort') ?? 'name',
    order: p.get('order') ?? '',
    platform: p.get('platform') ?? '',
    page: Number(p.get('page') ?? '1') || 1,
  };
  const search = h('input', {
    type: 'search',
    id: 'tag-search',
    value: state.q,
    placeholder: 'Filter tags',
    autocomplete: 'off',
  });
  const sort = h(
    'select',
    { id: 'tag-sort' },
    ...SORTS.map(([v, t]) => h('option', { value: v, selected: v === state.sort }, t)),
  );
  const order = h(
    'select',
    { id: 'tag-order' },
    h('option', { value: '', selected: state.order !== 'desc' }, 'Ascending'),
    h('option', { value: 'desc', selected: state.order === 'desc' }, 'Descending'),
  );
  const platform = h('select', { id: 'tag-platform' }, h('option', { value: '' }, 'All platforms'));
  const heading = h('div', { class: 'heading' });
  const results = h('div', { class: 'results', 'aria-busy': 'true' });
  let seq = 0;
  const load = async () => {
    updateParams('/repo', {
      name,
      q: state.q,
      sort: state.sort === 'name' ? undefined : state.sort,
      order: state.order,
      platform: state.platform,
      page: state.page > 1 ? state.page : undefined,
    });
    const mine = ++seq;
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await call<TagPage>(
        'GET',
        `/api/v1/tags${query({ repository: name, q: state.q, sort: state.sort, order: state.order, platform: state.platform, page: state.page })}`,
      );
      if (mine !== seq) return;
      replace(
        heading,
        kindBadge(data.kind),
        data.upstream ? ` cached from ${data.upstream}` : '',
        data.job ? ` mirrored by job ${data.job}` : '',
        ` · ${bytes(data.size)} in all`,
      );
      if (platform.options.length === 1)
        for (const pl of data.platforms)
          platform.appendChild(h('option', { value: pl, selected: pl === state.platform }, pl));
      replace(
        results,
        table(name, data, load),
        pager(data.page, data.n, data.total, (pg) => {
          state.page = pg;
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
  sort.addEventListener('change', () => {
    state.sort = sort.value;
    void load();
  });
  order.addEventListener('change', () => {
    state.order = order.value;
    void load();
  });
  platform.addEventListener('change', () => {
    state.platform = platform.value;
    state.page = 1;
    void load();
  });
  replace(
    main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Repositories'), ' / '),
    h('h1', {}, name),
    heading,
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      h('label', { for: 'tag-search' }, 'Tag'),
      search,
      h('label', { for: 'tag-platform' }, 'Platform'),
      platform,
      h('label', { for: 'tag-sort' }, 'Sort by'),
      sort,
      h('label', { for: 'tag-order', class: 'offscreen' }, 'Order'),
      order,
    ),
    results,
  );
  void load();
}

function table(name: string, data: TagPage, reload: () => Promise<void>): HTMLElement {
  if (data.items.length === 0) return h('p', { class: 'muted' }, 'No tags to show.');
  const cols = [
    'Tag',
    'Digest',
    'Platforms',
    'Size',
    'Pushed',
    'Last pulled',
    'Signed',
    ...(data.mayDelete ? ['Actions'] : []),
  ];
  return h(
    'table',
    { class: 'list' },
    h('caption', { class: 'offscreen' }, `Tags of ${name}`),
    h('thead', {}, h('tr', {}, ...cols.map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      ...data.items.map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, h('a', { href: link('/image', { name, ref: r.tag }) }, r.tag)),
          h('td', {}, digestCell(r.digest)),
          h(
            'td',
            {},
            r.platforms.length
              ? platformChips(r.platforms)
              : h('span', { class: 'muted' }, r.kind === 'image' ? 'no platform' : r.kind),
          ),
          h('td', { class: 'num' }, bytes(r.size)),
          h('td', { title: r.pushed ?? '' }, ago(r.pushed)),
          h('td', { title: r.lastPulled ?? '' }, ago(r.lastPulled)),
          h('td', {}, trustBadge(r.trust, r.accessories)),
          data.mayDelete ? h('td', {}, deleteButton(name, r.tag, reload)) : null,
        ),
      ),
    ),
  );
}

/** Deletes a tag after the user confirms in a dialog that names it. */
function deleteButton(name: string, tag: string, reload: () => Promise<void>): HTMLElement {
  const b = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete tag ${tag}` }, 'Delete');
  b.addEventListener('click', () => {
    const confirmBtn = h('button', { type: 'button', class: 'danger', id: 'confirm-delete' }, 'Delete tag');
    const cancel = h('button', { type: 'button' }, 'Cancel');
    const dlg = h(
      'dialog',
      { 'aria-labelledby': 'del-title' },
      h('h2', { id: 'del-title' }, 'Delete a tag'),
      h('p', {}, 'Delete ', h('code', {}, `${name}:${tag}`), '? The image stays while other tags name it.'),
      h('div', { class: 'actions' }, cancel, confirmBtn),
    );
    document.body.appendChild(dlg);
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => dlg.remove());
    confirmBtn.addEventListener('click', () => {
      confirmBtn.disabled = true;
      call('DELETE', `/api/v1/tags${query({ repository: name, tag })}`).then(
        () => {
          dlg.close();
          announce(`Deleted ${name}:${tag}`);
          void reload();
        },
        (e: Error) => {
          confirmBtn.disabled = false;
          dlg.appendChild(h('p', { class: 'error', role: 'alert' }, e.message));
        },
      );
    });
    dlg.showModal();
    cancel.focus();
  });
  return b;
}
