/** Bytes as people read them: 1.2 MB (decimal units, as docker and podman print sizes). */
export function bytes(n: number | undefined): string {
  if (n === undefined) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A time as "3 hours ago", with the exact time for a title. */
export function ago(iso: string | undefined): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return 'just now';
  const steps: [number, string][] = [
    [60, 'minute'],
    [3600, 'hour'],
    [86400, 'day'],
    [2592000, 'month'],
    [31536000, 'year'],
  ];
  let unit = 'minute';
  let size = 60;
  for (const [n, name] of steps) if (s >= n) [size, unit] = [n, name];
  const v = Math.floor(s / size);
  return `${v} ${unit}${v === 1 ? '' : 's'} ago`;
}

/** `sha256:abcdef012345` from a full digest. */
export function short(digest: string): string {
  const i = digest.indexOf(':');
  return i > 0 ? digest.slice(0, i + 13) : digest.slice(0, 19);
}
