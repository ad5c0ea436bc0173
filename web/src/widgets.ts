import { announce, h, type Child } from './dom.js';
import { bytes, short } from './format.js';

/** Copies text to the clipboard (the async API where the page is a secure context, else a selected field). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const field = h('textarea', { 'aria-hidden': 'true', class: 'offscreen' }, text);
    document.body.appendChild(field);
    field.select();
    document.execCommand('copy');
    field.remove();
  }
  announce('Copied to the clipboard');
}

/** A button that copies `text`; its label says what. */
export function copyButton(text: string, what: string): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${what}`, title: `Copy ${what}` }, 'Copy');
  b.addEventListener('click', () => {
    copyText(text).then(
      () => {
        b.textContent = 'Copied';
        window.setTimeout(() => (b.textContent = 'Copy'), 1500);
      },
      () => announce('Copying failed'),
    );
  });
  return b;
}

/** A short digest with its full value in the title and a copy button. */
export function digestCell(digest: string): HTMLElement {
  return h(
    'span',
    { class: 'digest' },
    h('code', { title: digest }, short(digest)),
    copyButton(digest, `digest ${digest}`),
  );
}

/** One chip per platform, each with its own size; a platform the repository lacks is marked. */
export function platformChips(platforms: { platform: string; size: number; present: boolean }[]): HTMLElement {
  return h(
    'ul',
    { class: 'chips', 'aria-label': 'Platforms' },
    ...platforms.map((p) =>
      h(
        'li',
        { class: p.present ? 'chip' : 'chip missing', title: p.present ? undefined : 'not in this repository' },
        p.platform,
        ' ',
        h('span', { class: 'muted' }, p.present ? bytes(p.size) : 'missing'),
      ),
    ),
  );
}

/** A kind badge: local, cache or mirror. */
export function kindBadge(kind: string): HTMLElement {
  return h('span', { class: `badge kind-${kind === 'cache' || kind === 'mirror' ? kind : 'local'}` }, kind);
}

/** The signed state of an image as a badge and a line. */
export interface TrustLike {
  state: string;
  rule?: string;
  reason: string;
  signatures: { where: string; accepted: boolean; reason: string; key?: string; signer?: string }[];
}

/** Who signed, in a few words: the key or the keyless identity of the first accepted signature. */
export function signedBy(t: TrustLike): string | undefined {
  const s = t.signatures.find((x) => x.accepted);
  return s ? (s.signer ?? (s.key ? `key ${s.key}` : undefined)) : undefined;
}

/** A badge for the trust verdict. */
export function trustBadge(t: TrustLike, accessories = 0): HTMLElement {
  if (t.state === 'verified') return h('span', { class: 'badge ok', title: t.reason }, '✓ ', signedBy(t) ?? 'verified');
  if (t.state === 'refused') return h('span', { class: 'badge bad', title: t.reason }, '✗ refused');
  return h('span', { class: 'badge', title: t.reason }, accessories ? `${accessories} attached` : 'unsigned');
}

/** A pager: previous and next, with where the page is. */
export function pager(page: number, n: number, total: number, go: (page: number) => void): HTMLElement {
  const pages = Math.max(1, Math.ceil(total / n));
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1) }, '‹ Previous'),
    h('span', {}, `Page ${page} of ${pages} · ${total} in all`),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1) }, 'Next ›'),
  );
}

/** A labelled section. */
export function section(title: string, ...children: Child[]): HTMLElement {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}
