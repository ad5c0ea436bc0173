import { OciError } from '../oci/errors.js';

/** The largest page the API answers; the UI asks for 50. */
export const PAGE_MAX = 500;
const PAGE_DEFAULT = 50;
/** Search text longer than any repository name or tag is refused rather than matched. */
const QUERY_MAX = 256;

/** Paging, search and order of a list request, validated. */
export interface ListQuery {
  page: number;
  n: number;
  /** Lower-case substring to look for, or '' for all. */
  q: string;
  sort: string;
  desc: boolean;
}

/** One page of a list and where it sits in the whole (the total counts only what the caller may see). */
export interface Page<T> {
  items: T[];
  page: number;
  n: number;
  total: number;
}

function bad(message: string): never {
  throw new OciError('UNSUPPORTED', message, undefined, 400);
}

/** Reads `page`, `n`, `q`, `sort` and `order` from a query; `sorts` lists the orders this list knows. */
export function parseListQuery(query: Record<string, unknown>, sorts: readonly string[]): ListQuery {
  const text = (k: string): string | undefined => {
    const v = query[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') bad(`${k}= given more than once`);
    return v;
  };
  const int = (k: string, dflt: number, max: number): number => {
    const v = text(k);
    if (v === undefined || v === '') return dflt;
    if (!/^\d{1,9}$/.test(v)) bad(`${k}= must be a whole number`);
    return Math.min(Number(v), max);
  };
  const q = text('q') ?? '';
  if (q.length > QUERY_MAX) bad(`q= is longer than ${QUERY_MAX} characters`);
  const sort = text('sort') || sorts[0]!;
  if (!sorts.includes(sort)) bad(`sort= must be one of ${sorts.join(', ')}`);
  const order = text('order') ?? '';
  if (order !== '' && order !== 'asc' && order !== 'desc') bad('order= must be asc or desc');
  return {
    page: Math.max(1, int('page', 1, 1_000_000)),
    n: Math.max(1, int('n', PAGE_DEFAULT, PAGE_MAX)),
    q: q.toLowerCase(),
    sort,
    desc: order === 'desc',
  };
}

/** Takes page `page` (1-based) of `n` items. */
export function pageOf<T>(all: readonly T[], query: ListQuery): Page<T> {
  const start = (query.page - 1) * query.n;
  return { items: all.slice(start, start + query.n), page: query.page, n: query.n, total: all.length };
}

/** Compares two optional values, absent last whichever the order. */
export function compareBy<T>(key: (x: T) => string | number | undefined, desc: boolean): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === y) return 0;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    const c = x < y ? -1 : 1;
    return desc ? -c : c;
  };
}
