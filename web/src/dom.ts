// Every element is built with createElement and every text set with textContent: nothing that comes from
// an image (labels, annotations, names, history) is ever parsed as HTML.

/** Attributes and properties an element is made with; `on*` keys take listeners. */
export type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

/** A child: an element, text (set as text, never markup), or nothing. */
export type Child = Node | string | number | null | undefined | false;

/** Makes an element. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'href') el.setAttribute('href', safeHref(String(v)));
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Appends children as nodes or text. */
export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

/** Only in-page and same-origin paths are links: a `javascript:` URL from an annotation never becomes one. */
export function safeHref(href: string): string {
  return href.startsWith('#') || (href.startsWith('/') && !href.startsWith('//')) ? href : '#';
}

/** Replaces an element's content. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Says something to screen readers and shows it briefly. */
export function announce(text: string): void {
  const s = document.getElementById('status');
  if (!s) return;
  s.textContent = text;
  window.setTimeout(() => {
    if (s.textContent === text) s.textContent = '';
  }, 3000);
}
