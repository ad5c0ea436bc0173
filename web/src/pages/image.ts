import { call, query } from '../api.js';
import { h, replace } from '../dom.js';
import { bytes } from '../format.js';
import { link, type Route } from '../route.js';
import { digestCell, kindBadge, section, type TrustLike } from '../widgets.js';
import {
  code,
  dl,
  map,
  provenanceSection,
  pullTable,
  referrerTree,
  trustSection,
  whySection,
  type Provenance,
  type Referrer,
  type Why,
} from './image-sections.js';

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
  provenance?: Provenance;
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
    (e: Error) =>
      replace(
        main,
        h('h1', {}, `${name}${ref.includes(':') ? '@' : ':'}${ref}`),
        h('p', { class: 'error', role: 'alert' }, e.message),
      ),
  );
}

function render(main: HTMLElement, img: Image): void {
  const name = img.repository;
  const title = img.reference.includes(':') ? `${name}@${img.reference}` : `${name}:${img.reference}`;
  const c = img.config;
  replace(
    main,
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/' }, 'Repositories'),
      ' / ',
      h('a', { href: link('/repo', { name }) }, name),
      ' / ',
    ),
    h('h1', {}, title),
    h(
      'p',
      { class: 'heading' },
      kindBadge(img.source.kind),
      ' ',
      h('span', { class: 'badge' }, img.kind),
      ' ',
      digestCell(img.digest),
      h('span', { class: 'muted' }, ` ${img.mediaType}`),
    ),
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
            [
              'Environment',
              c.env?.length
                ? h('ul', { class: 'plain' }, ...c.env.map((e) => h('li', {}, h('code', {}, e))))
                : undefined,
            ],
            ['Labels', map(c.labels, 'Labels')],
          ]),
          c.history.length
            ? h(
                'details',
                {},
                h('summary', {}, `History (${c.history.length} steps)`),
                h(
                  'ol',
                  { class: 'history' },
                  ...c.history.map((x) =>
                    h(
                      'li',
                      {},
                      h('code', {}, x.createdBy ?? ''),
                      x.emptyLayer ? h('span', { class: 'muted' }, ' (no layer)') : null,
                      x.comment ? ` — ${x.comment}` : null,
                    ),
                  ),
                ),
              )
            : null,
        )
      : null,
    img.layers
      ? section(
          'Layers',
          h(
            'table',
            { class: 'list' },
            h(
              'thead',
              {},
              h('tr', {}, ...['#', 'Digest', 'Media type', 'Size'].map((x) => h('th', { scope: 'col' }, x))),
            ),
            h(
              'tbody',
              {},
              ...img.layers.map((l, i) =>
                h(
                  'tr',
                  {},
                  h('td', {}, String(i + 1)),
                  h('td', {}, digestCell(l.digest)),
                  h('td', {}, l.mediaType),
                  h('td', { class: 'num' }, bytes(l.size)),
                ),
              ),
            ),
          ),
        )
      : null,
    img.children
      ? section(
          'Platforms',
          h(
            'table',
            { class: 'list' },
            h(
              'thead',
              {},
              h('tr', {}, ...['Platform', 'Digest', 'Manifest size', ''].map((x) => h('th', { scope: 'col' }, x))),
            ),
            h(
              'tbody',
              {},
              ...img.children.map((ch) =>
                h(
                  'tr',
                  {},
                  h(
                    'th',
                    { scope: 'row' },
                    ch.present
                      ? h('a', { href: link('/image', { name, ref: ch.digest }) }, ch.platform ?? 'unknown')
                      : (ch.platform ?? 'unknown'),
                  ),
                  h('td', {}, digestCell(ch.digest)),
                  h('td', { class: 'num' }, bytes(ch.size)),
                  h(
                    'td',
                    {},
                    ch.present
                      ? ''
                      : h(
                          'span',
                          { class: 'badge bad' },
                          img.source.kind === 'cache' ? 'not fetched yet' : 'not in this repository',
                        ),
                  ),
                ),
              ),
            ),
          ),
        )
      : null,
    section(
      'Referrers',
      img.referrers.length
        ? referrerTree(img.referrers)
        : h('p', { class: 'muted' }, 'No signatures, attestations or SBOMs refer to this image.'),
    ),
    img.annotations ? section('Annotations', map(img.annotations, 'Annotations')) : null,
    h('details', { class: 'manifest' }, h('summary', {}, 'Manifest'), h('pre', {}, img.manifest)),
  );
}
