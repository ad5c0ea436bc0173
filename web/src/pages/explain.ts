import { call, query } from '../api.js';
import { h, replace } from '../dom.js';
import { updateParams, type Route } from '../route.js';

interface Decision {
  action: string;
  allowed: boolean;
  rule?: number;
  ruleName?: string;
  by?: string;
  reason: string;
}

interface Answer {
  principal: string;
  kind: 'access' | 'fetch' | 'trust';
  allowed: boolean;
  /** The lines `sluice policy explain` prints for the same question. */
  lines: string[];
  result: Decision[] | unknown;
}

/** Who the page may ask about: an administrator anyone, everyone else only themselves. */
export interface Asker {
  admin: boolean;
  me?: string;
}

const ACTIONS: [string, string][] = [
  ['pull,push,overwrite,delete', 'pull, push, overwrite, delete'],
  ['pull', 'pull'],
  ['push', 'push'],
  ['overwrite', 'overwrite'],
  ['delete', 'delete'],
  ['list', 'list (the catalog)'],
  ['fetch', 'fetch: may the cache bring it in (flow rules)'],
  ['trust', 'trust: which signatures it needs (trust rules)'],
];

/** The policy explainer (`#/explain`): who, action and image in; the deciding rules out, as the CLI says them. */
export function explainPage(main: HTMLElement, route: Route, asker: Asker): void {
  const p = route.params;
  const who = h(
    'select',
    { id: 'explain-who', name: 'who' },
    h('option', { value: '' }, asker.me ? `Me (${asker.me})` : 'Me (anonymous)'),
    ...(asker.admin
      ? [
          h('option', { value: 'user', selected: p.get('who') === 'user' }, 'A user'),
          h('option', { value: 'robot', selected: p.get('who') === 'robot' }, 'A robot'),
          h('option', { value: 'anonymous', selected: p.get('who') === 'anonymous' }, 'Anonymous'),
        ]
      : []),
  );
  const name = h('input', { id: 'explain-name', name: 'name', value: p.get('name') ?? '', autocomplete: 'off' });
  const nameLabel = h('label', { for: 'explain-name' }, 'Name');
  const action = h(
    'select',
    { id: 'explain-action', name: 'action' },
    ...ACTIONS.map(([v, t]) => h('option', { value: v, selected: v === (p.get('action') ?? ACTIONS[0]![0]) }, t)),
  );
  const reference = h('input', {
    id: 'explain-reference',
    name: 'reference',
    value: p.get('reference') ?? '',
    placeholder: 'team-a/app:1 or docker.io/library/nginx:1.27',
    required: true,
    autocomplete: 'off',
  });
  const out = h('div', { 'aria-live': 'polite' });
  const showName = () => {
    const named = who.value === 'user' || who.value === 'robot';
    name.hidden = !named;
    nameLabel.hidden = !named;
    name.required = named;
  };
  who.addEventListener('change', showName);
  showName();
  const ask = async () => {
    const params = { who: who.value, name: name.hidden ? '' : name.value.trim(), action: action.value };
    updateParams('/explain', { ...params, reference: reference.value.trim() });
    out.setAttribute('aria-busy', 'true');
    try {
      const a = await call<Answer>(
        'GET',
        `/api/v1/policy/explain${query({ ...params, reference: reference.value.trim() })}`,
      );
      replace(out, answerView(a));
    } catch (e) {
      replace(out, h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    } finally {
      out.setAttribute('aria-busy', 'false');
    }
  };
  const form = h(
    'form',
    { class: 'ask', 'aria-label': 'Ask the policy' },
    h('label', { for: 'explain-who' }, 'Who'),
    who,
    nameLabel,
    name,
    h('label', { for: 'explain-action' }, 'Action'),
    action,
    h('label', { for: 'explain-reference' }, 'Image'),
    reference,
    h('span'),
    h('div', {}, h('button', { type: 'submit' }, 'Explain')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void ask();
  });
  replace(
    main,
    h('h1', {}, 'Explain the policy'),
    h(
      'p',
      { class: 'muted' },
      asker.admin
        ? 'Which rule decides an action on an image, for anyone, as sluice policy explain prints it.'
        : 'Which rule decides what you may do with an image, as sluice policy explain prints it.',
    ),
    form,
    out,
  );
  if (reference.value) void ask();
}

function answerView(a: Answer): HTMLElement {
  const decisions = a.kind === 'access' ? (a.result as Decision[]) : [];
  return h(
    'section',
    { 'aria-labelledby': 's-answer' },
    h('h2', { id: 's-answer' }, a.kind === 'access' ? `For ${a.principal}` : a.kind === 'fetch' ? 'Fetch' : 'Trust'),
    decisions.length
      ? h(
          'ul',
          { class: 'why' },
          ...decisions.map((d) =>
            h(
              'li',
              {},
              h(
                'span',
                { class: `badge ${d.allowed ? 'ok' : 'bad'}` },
                `${d.action} ${d.allowed ? 'allowed' : 'denied'}`,
              ),
              ' ',
              h('span', { class: 'muted' }, d.reason),
            ),
          ),
        )
      : a.kind === 'fetch'
        ? h('p', {}, h('span', { class: `badge ${a.allowed ? 'ok' : 'bad'}` }, a.allowed ? 'allowed' : 'denied'))
        : null,
    h('pre', { class: 'explain-out', 'aria-label': 'As sluice policy explain prints it' }, a.lines.join('\n')),
  );
}
