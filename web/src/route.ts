/** A page's address in the fragment: `#/repo?name=team/app&sort=size`. */
export interface Route {
  page: string;
  params: URLSearchParams;
}

/** The route the location names. */
export function currentRoute(): Route {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  return { page: q >= 0 ? raw.slice(0, q) : raw, params: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
}

/** A link to a page. */
export function link(page: string, params: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#${page}${s ? `?${s}` : ''}`;
}

/** Changes the parameters of the page shown without a new history entry or a re-render; only that page's own. */
export function updateParams(page: string, params: Record<string, string | number | undefined>): void {
  // A page left behind (its timer or a late answer) must not pull the address back to itself.
  if (currentRoute().page !== page) return;
  history.replaceState(null, '', link(page, params));
}
