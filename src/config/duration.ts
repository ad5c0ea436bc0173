/**
 * Durations as Distribution's config writes them (Go syntax, a subset): `500ms`, `30s`, `5m`, `168h`, `1h30m`;
 * plus days and weeks (`30d`, `2w`), which Go lacks but robot expiries want.
 */
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** True when the text is a duration `parseDuration` reads (a bare number counts as seconds). */
export function isDuration(text: string): boolean {
  return WHOLE.test(text) || /^\d+(?:\.\d+)?$/.test(text);
}

/** Milliseconds of a duration; throws on anything else. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Number(t) * 1000;
  if (!WHOLE.test(t)) throw new Error(`invalid duration "${text}"`);
  let ms = 0;
  for (const m of t.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms;
}
