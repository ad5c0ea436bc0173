// The one way the UI talks to the server: same-origin JSON under /api/v1/, the session in an HttpOnly cookie
// the script never sees, and the CSRF token in a header on every request that changes something.

/** An error the API answered with, in the registry's OCI format. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Who the page is signed in as, and whether logging in is possible at all. */
export interface Session {
  user?: string;
  csrf?: string;
  login: boolean;
}

let csrf: string | undefined;

/** Remembers the CSRF token the session answer gave. */
export function setCsrf(token: string | undefined): void {
  csrf = token;
}

/** Sends a request and reads its JSON answer; a refusal becomes an ApiError with the server's message. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const r = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = {};
  }
  if (!r.ok) {
    const e = (data as { errors?: { code?: string; message?: string }[] }).errors?.[0];
    throw new ApiError(r.status, e?.code ?? 'UNKNOWN', e?.message ?? `${r.status} ${r.statusText}`);
  }
  return data as T;
}

/** A query string from parameters, leaving out empty ones. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
