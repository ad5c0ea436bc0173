import { call, query } from '../api.js';
import { h, replace, type Child } from '../dom.js';
import { ago, bytes } from '../format.js';
import { link, type Route } from '../route.js';
import { copyButton, digestCell, kindBadge, section, signedBy, type TrustLike } from '../widgets.js';

interface Referrer {
  digest: string;
  mediaType: string;
  artifactType?: string;
  size: number;
  via: string;
  role: string;
  annotations?: Record<string, string>;
  layers: { mediaType: string; size: number }[];
  referrers: Referrer[];
}

interface Image {
  repository: string;
  reference: string;
  digest: string;
  mediaType: string;
  kind: 'image' | 'index';
  manifest: string;
  source: { kind: string; upstream?: string; job?: string };
  annotations?: Record<string, string>;
  artifactType?: string;
  config?: {
    os?: string;
    architecture?: string;
    created?: string;
    entrypoint?: string[];
    cmd?: string[];
    env?: string[];
    labels?: Record<string, string>;
    workingDir?: string;
    user?: string;
    exposedPorts?: string[];
    history: { created?: string; createdBy?: string; comment?: string; emptyLayer?: boolean }[];
    problem?: string;
  };
  layers?: { digest: string; mediaType: string; size: number }[];
  children?: { digest: string; size: number; platform?: string; present: boolean }[];
  referrers: Referrer[];
  trust: TrustLike;
  provenance?: Record<string, unknown> & { flow?: { allowed: boolean; rule?: string; reason: string } };
  pull: Record<string, Record<string, string>>;
}

/** An image or index: pull commands, trust, provenance, config, layers, platforms, referrers and the manifest. */
export function imagePage(main: HTMLElement, route: Route): void {
  const name = route.params.get('name') ?? '';
  const ref = route.params.get('ref') ?? '';
  replace(main, h('p', { class: 'muted' }, 'Loading…'));
  call<Image>('GET', `/api/v1/image${query({ repository: name, reference: ref })}`).then(
    (img) => {
      render(main, img);
      // Why: the caller's own decisions on this image, by the same rules the registry applies.
      call<Why>('GET', `/api/v1/explain${query({ repository: name, reference: ref })}`).then(
        (why) => main.querySelector('#why-slot')?.replaceWith(whySection(why)),
        () => main.querySelector('#why-slot')?.remove(),
      );
    },
    (e: Error) => replace(main, h('h1', {}, `${name}${ref.includes(':') ? '@' : ':'}${ref}`), h('p', { class: 'error', role: 'alert' }, e.message)),
  );
}

function dl(rows: [string, Child][]): HTMLElement {
  return h('dl', { class: 'facts' }, ...rows.filter(([, v]) => v !== undefined && v !== null).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function code(lines: string[] | undefined): Child {
  return lines && lines.length ? h('code', {}, lines.join(' ')) : undefined;
}

function map(m: Record<string, string> | undefined, label: string): Child {
  if (!m || Object.keys(m).length === 0) return undefined;
  return h('table', { class: 'kv' }, h('caption', { class: 'offscreen' }, label), h('tbody', {}, ...Object.entries(m).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
}

function pullTable(pull: Image['pull']): HTMLElement {
  const groups = Object.keys(pull);
  return h(
    'table',
    { class: 'pull' },
    h('caption', { class: 'offscreen' }, 'Pull commands'),
    h('colgroup', {}, h('col', { class: 'client' }), h('col', {}), h('col', { class: 'copycol' })),
    ...groups.map((k) =>
      h(
        'tbody',
        {},
        h('tr', {}, h('th', { scope: 'colgroup', colspan: 3, class: 'group' }, `By ${k}`)),
        ...Object.entries(pull[k]!).map(([client, cmd]) =>
          h('tr', {}, h('th', { scope: 'row' }, client), h('td', { class: 'cmd' }, h('code', {}, cmd)), h('td', {}, copyButton(cmd, `${client} pull command by ${k}`))),
        ),
      ),
    ),
  );
}

function trustSection(t: TrustLike): HTMLElement {
  const who = signedBy(t);
  const head = t.state === 'verified' ? `Signed${who ? ` by ${who}` : ''}` : t.state === 'refused' ? 'Refused by the trust rules' : 'No trust rule applies';
  return section(
    'Signatures',
    h('p', { class: `verdict ${t.state}` }, head),
    h('p', {}, t.reason),
    t.signatures.length
      ? h('ul', { class: 'sigs' }, ...t.signatures.map((s) => h('li', {}, h('span', { class: s.accepted ? 'badge ok' : 'badge bad' }, s.accepted ? 'accepted' : 'not accepted'), ' ', s.signer ?? (s.key ? `key ${s.key}` : ''), ' — ', s.where, ': ', s.reason)))
      : null,
  );
}

interface Why {
  principal: string;
  actions: { action: string; allowed: boolean; by: string; reason: string }[];
  fetch?: { allowed: boolean; rule?: string; reason: string };
  trust?: { rule: string };
}

function whySection(w: Why): HTMLElement {
  return section(
    'Why',
    h('p', { class: 'muted' }, `What ${w.principal === 'anonymous' ? 'an anonymous caller' : w.principal} may do here, and the rule that decides it:`),
    h(
      'ul',
      { class: 'why' },
      ...w.actions.map((a) => h('li', {}, h('span', { class: a.allowed ? 'badge ok' : 'badge bad' }, `${a.action} ${a.allowed ? 'allowed' : 'denied'}`), ' ', h('span', { class: 'muted' }, `${a.by}: `), a.reason)),
      w.fetch ? h('li', {}, h('span', { class: w.fetch.allowed ? 'badge ok' : 'badge bad' }, `fetch ${w.fetch.allowed ? 'allowed' : 'refused'}`), ' ', w.fetch.reason) : null,
      w.trust ? h('li', {}, h('span', { class: 'badge' }, 'trust'), ` pulls must satisfy ${w.trust.rule}`) : null,
    ),
  );
}

function provenanceSection(p: NonNullable<Image['provenance']>): HTMLElement {
  const s = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
  const run = p['lastRun'] as { finishedAt?: string; ok?: boolean; copied?: number; refused?: number; errors?: number } | undefined;
  return section(
    'Provenance',
    dl([
      ['Upstream image', s('image')],
      ['Upstream', s('url') ?? s('upstream')],
      ['Flow rule', p.flow ? `${p.flow.allowed ? 'allowed' : 'refused'}: ${p.flow.reason}` : undefined],
      ['Fetched', s('fetchedAt') ? `${ago(s('fetchedAt'))} (${s('fetchedAt')})` : undefined],
      ['Last pulled', s('lastPulledAt') ? ago(s('lastPulledAt')) : undefined],
      ['Re-checked with upstream', s('recheckAfter') ? (p['due'] ? 'on the next pull (served stale if upstream fails)' : `after ${s('recheckAfter')}`) : undefined],
      ['Mirror job', s('job')],
      ['Last run', run ? `${ago(run.finishedAt)}: ${run.ok ? 'ok' : 'with errors'}, ${run.copied} copied, ${run.refused} refused, ${run.errors} errors` : undefined],
    ]),
  );
}

function referrerTree(list: Referrer[]): HTMLElement {
  return h(
    'ul',
    { class: 'tree' },
    ...list.map((r) =>
      h(
        'li',
        {},
        h('span', { class: `badge role-${r.role}` }, r.role),
        ' ',
        h('strong', {}, r.artifactType ?? r.mediaType),
        ' ',
        digestCell(r.digest),
        h('span', { class: 'muted' }, ` ${bytes(r.size)}, via ${r.via}`),
        map(r.annotations, 'Annotations'),
        r.layers.length ? h('ul', { class: 'muted small' }, ...r.layers.map((l) => h('li', {}, `${l.mediaType} (${bytes(l.size)})`))) : null,
        r.referrers.length ? referrerTree(r.referrers) : null,
      ),
    ),
  );
}

function render(main: HTMLElement, img: Image): void {
  const name = img.repository;
  const title = img.reference.includes(':') ? `${name}@${img.reference}` : `${name}:${img.reference}`;
  const c = img.config;
  replace(
    main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Repositories'), ' / ', h('a', { href: link('/repo', { name }) }, name), ' / '),
    h('h1', {}, title),
    h('p', { class: 'heading' }, kindBadge(img.source.kind), ' ', h('span', { class: 'badge' }, img.kind), ' ', digestCell(img.digest), h('span', { class: 'muted' }, ` ${img.mediaType}`)),
    section('Pull', pullTable(img.pull)),
    trustSection(img.trust),
    img.provenance ? provenanceSection(img.provenance) : null,
    h('div', { id: 'why-slot' }),
    c
      ? section(
          'Config',
          c.problem ? h('p', { class: 'error' }, c.problem) : null,
          dl([
            ['Platform', c.os ? `${c.os}/${c.architecture ?? ''}` : undefined],
            ['Created', c.created],
            ['Entrypoint', code(c.entrypoint)],
            ['Command', code(c.cmd)],
            ['Working directory', c.workingDir],
            ['User', c.user],
            ['Ports', c.exposedPorts?.join(', ')],
            ['Environment', c.env?.length ? h('ul', { class: 'plain' }, ...c.env.map((e) => h('li', {}, h('code', {}, e)))) : undefined],
            ['Labels', map(c.labels, 'Labels')],
          ]),
          c.history.length
            ? h('details', {}, h('summary', {}, `History (${c.history.length} steps)`), h('ol', { class: 'history' }, ...c.history.map((x) => h('li', {}, h('code', {}, x.createdBy ?? ''), x.emptyLayer ? h('span', { class: 'muted' }, ' (no layer)') : null, x.comment ? ` — ${x.comment}` : null))))
            : null,
        )
      : null,
    img.layers
      ? section('Layers', h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ...['#', 'Digest', 'Media type', 'Size'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, ...img.layers.map((l, i) => h('tr', {}, h('td', {}, String(i + 1)), h('td', {}, digestCell(l.digest)), h('td', {}, l.mediaType), h('td', { class: 'num' }, bytes(l.size)))))))
      : null,
    img.children
      ? section('Platforms', h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ...['Platform', 'Digest', 'Manifest size', ''].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, ...img.children.map((ch) => h('tr', {}, h('th', { scope: 'row' }, ch.present ? h('a', { href: link('/image', { name, ref: ch.digest }) }, ch.platform ?? 'unknown') : (ch.platform ?? 'unknown')), h('td', {}, digestCell(ch.digest)), h('td', { class: 'num' }, bytes(ch.size)), h('td', {}, ch.present ? '' : h('span', { class: 'badge bad' }, img.source.kind === 'cache' ? 'not fetched yet' : 'not in this repository')))))))
      : null,
    section('Referrers', img.referrers.length ? referrerTree(img.referrers) : h('p', { class: 'muted' }, 'No signatures, attestations or SBOMs refer to this image.')),
    img.annotations ? section('Annotations', map(img.annotations, 'Annotations')) : null,
    h('details', { class: 'manifest' }, h('summary', {}, 'Manifest'), h('pre', {}, img.manifest)),
  );
}
