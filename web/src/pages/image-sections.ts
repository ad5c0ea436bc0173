// The parts of the image page, each a labelled section built from the API's answer (text only, never markup).
import { h, type Child } from '../dom.js';
import { ago, bytes } from '../format.js';
import { copyButton, digestCell, section, signedBy, type TrustLike } from '../widgets.js';

/** One node of the referrers tree as the API gives it. */
export interface Referrer {
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

/** Where a cached or mirrored image came from, as the API gives it. */
export type Provenance = Record<string, unknown> & { flow?: { allowed: boolean; rule?: string; reason: string } };

/** A definition list of the rows that have a value. */
export function dl(rows: [string, Child][]): HTMLElement {
  return h(
    'dl',
    { class: 'facts' },
    ...rows.filter(([, v]) => v !== undefined && v !== null).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** Words of a command line as one code span, or nothing. */
export function code(lines: string[] | undefined): Child {
  return lines?.length ? h('code', {}, lines.join(' ')) : undefined;
}

/** A two-column table of a string map (labels, annotations), or nothing. */
export function map(m: Record<string, string> | undefined, label: string): Child {
  if (!m || Object.keys(m).length === 0) return undefined;
  return h(
    'table',
    { class: 'kv' },
    h('caption', { class: 'offscreen' }, label),
    h('tbody', {}, ...Object.entries(m).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))),
  );
}

/** Pull commands by tag and by digest, one per line, each with its copy button. */
export function pullTable(pull: Record<string, Record<string, string>>): HTMLElement {
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
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, client),
            h('td', { class: 'cmd' }, h('code', {}, cmd)),
            h('td', {}, copyButton(cmd, `${client} pull command by ${k}`)),
          ),
        ),
      ),
    ),
  );
}

/** The trust verdict, and each signature with who signed it or why it does not count. */
export function trustSection(t: TrustLike): HTMLElement {
  const who = signedBy(t);
  const head =
    t.state === 'verified'
      ? `Signed${who ? ` by ${who}` : ''}`
      : t.state === 'refused'
        ? 'Refused by the trust rules'
        : 'No trust rule applies';
  return section(
    'Signatures',
    h('p', { class: `verdict ${t.state}` }, head),
    h('p', {}, t.reason),
    t.signatures.length
      ? h(
          'ul',
          { class: 'sigs' },
          ...t.signatures.map((s) =>
            h(
              'li',
              {},
              h('span', { class: s.accepted ? 'badge ok' : 'badge bad' }, s.accepted ? 'accepted' : 'not accepted'),
              ' ',
              s.signer ?? (s.key ? `key ${s.key}` : ''),
              ' — ',
              s.where,
              ': ',
              s.reason,
            ),
          ),
        )
      : null,
  );
}

/** The caller's decisions as `GET /api/v1/explain` gives them. */
export interface Why {
  principal: string;
  actions: { action: string; allowed: boolean; by: string; reason: string }[];
  fetch?: { allowed: boolean; rule?: string; reason: string };
  trust?: { rule: string };
}

/** The caller's own decisions on the image and the rules that decide them. */
export function whySection(w: Why): HTMLElement {
  return section(
    'Why',
    h(
      'p',
      { class: 'muted' },
      `What ${w.principal === 'anonymous' ? 'an anonymous caller' : w.principal} may do here, and the rule that decides it:`,
    ),
    h(
      'ul',
      { class: 'why' },
      ...w.actions.map((a) =>
        h(
          'li',
          {},
          h('span', { class: a.allowed ? 'badge ok' : 'badge bad' }, `${a.action} ${a.allowed ? 'allowed' : 'denied'}`),
          ' ',
          h('span', { class: 'muted' }, `${a.by}: `),
          a.reason,
        ),
      ),
      w.fetch
        ? h(
            'li',
            {},
            h(
              'span',
              { class: w.fetch.allowed ? 'badge ok' : 'badge bad' },
              `fetch ${w.fetch.allowed ? 'allowed' : 'refused'}`,
            ),
            ' ',
            w.fetch.reason,
          )
        : null,
      w.trust ? h('li', {}, h('span', { class: 'badge' }, 'trust'), ` pulls must satisfy ${w.trust.rule}`) : null,
    ),
  );
}

/** Where a cached or mirrored image came from and which flow rule let it in. */
export function provenanceSection(p: Provenance): HTMLElement {
  const s = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
  const run = p['lastRun'] as
    | { finishedAt?: string; ok?: boolean; copied?: number; refused?: number; errors?: number }
    | undefined;
  return section(
    'Provenance',
    dl([
      ['Upstream image', s('image')],
      ['Upstream', s('url') ?? s('upstream')],
      ['Flow rule', p.flow ? `${p.flow.allowed ? 'allowed' : 'refused'}: ${p.flow.reason}` : undefined],
      ['Fetched', s('fetchedAt') ? `${ago(s('fetchedAt'))} (${s('fetchedAt')})` : undefined],
      ['Last pulled', s('lastPulledAt') ? ago(s('lastPulledAt')) : undefined],
      [
        'Re-checked with upstream',
        s('recheckAfter')
          ? p['due']
            ? 'on the next pull (served stale if upstream fails)'
            : `after ${s('recheckAfter')}`
          : undefined,
      ],
      ['Mirror job', s('job')],
      [
        'Last run',
        run
          ? `${ago(run.finishedAt)}: ${run.ok ? 'ok' : 'with errors'}, ${run.copied} copied, ${run.refused} refused, ${run.errors} errors`
          : undefined,
      ],
    ]),
  );
}

/** Signatures, attestations and SBOMs, and what refers to them in turn. */
export function referrerTree(list: Referrer[]): HTMLElement {
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
        r.layers.length
          ? h('ul', { class: 'muted small' }, ...r.layers.map((l) => h('li', {}, `${l.mediaType} (${bytes(l.size)})`)))
          : null,
        r.referrers.length ? referrerTree(r.referrers) : null,
      ),
    ),
  );
}
