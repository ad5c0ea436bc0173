import picomatch from 'picomatch';
import type SemVer from 'semver/classes/semver.js';
import rcompare from 'semver/functions/rcompare.js';
import satisfies from 'semver/functions/satisfies.js';
import { parseDuration } from '../config/duration.js';
import { compilePatterns, expandPatterns, PolicyError, splitPattern, type Pattern } from './patterns.js';
import type { RetentionRuleConfig } from './retention-config.js';
import { ANONYMOUS } from './types.js';
import { versionOf } from './versions.js';

/** A retention rule ready to judge tags. */
export interface RetentionRule {
  /** 1-based, as `rule N` in verdicts. */
  index: number;
  spec: RetentionRuleConfig;
  images: Pattern[];
  tags?: (tag: string) => boolean;
  pushedWithinMs?: number;
  pulledWithinMs?: number;
  untaggedMs?: number;
}

/** One tag as retention sees it: when it was pushed and last pulled (epoch ms). */
export interface TagTimes {
  tag: string;
  pushed: number;
  pulled?: number;
}

/** The verdict on one tag: kept or deleted, and the rule that decided it in words. */
export interface TagVerdict {
  tag: string;
  kept: boolean;
  /** The deciding rule (the first that keeps it); absent for a deletion, which every applicable rule allowed. */
  rule?: number;
  reason: string;
}

/** Compiles `retention:`; throws PolicyError naming the rule whose pattern cannot be used. */
export function compileRetention(rules: RetentionRuleConfig[], sets: Record<string, string[]> = {}): RetentionRule[] {
  return rules.map((spec, i) => {
    const at = `retention rule ${i + 1}`;
    let images: Pattern[];
    try {
      for (const { source } of expandPatterns(spec.images, sets)) {
        const parts = splitPattern(source);
        if (parts.tag !== undefined || parts.digest !== undefined) {
          throw new PolicyError(`image "${source}" names a tag or digest; write tags: for that`);
        }
      }
      images = compilePatterns(spec.images, sets);
    } catch (e) {
      throw new PolicyError(`${at}: ${(e as Error).message}`);
    }
    const rule: RetentionRule = { index: i + 1, spec, images };
    if (spec.tags) {
      const globs = spec.tags.map((g) => picomatch(g, { dot: true, noext: true }));
      rule.tags = (t) => globs.some((g) => g(t));
    }
    if (spec.pushedwithin) rule.pushedWithinMs = parseDuration(spec.pushedwithin);
    if (spec.pulledwithin) rule.pulledWithinMs = parseDuration(spec.pulledwithin);
    if (spec.untagged) rule.untaggedMs = parseDuration(spec.untagged);
    return rule;
  });
}

/** The problems of a `retention:` section beyond its schema (patterns that cannot be used), one line each. */
export function retentionProblems(rules: RetentionRuleConfig[], sets: Record<string, string[]>): string[] {
  try {
    compileRetention(rules, sets);
    return [];
  } catch (e) {
    return [`retention: ${(e as Error).message}`];
  }
}

/** The rules that apply to a repository; none means retention leaves it alone. */
export function rulesFor(rules: RetentionRule[], repository: string): RetentionRule[] {
  return rules.filter((r) => r.images.some((p) => p.matches({ repository }, ANONYMOUS)));
}

/** `rule 2` or `rule 2 "releases"`. */
export function ruleLabel(r: RetentionRule): string {
  return r.spec.name ? `rule ${r.index} "${r.spec.name}"` : `rule ${r.index}`;
}

/** True when a rule names a way to keep tags besides `tags` (which alone means: always). */
function hasCriteria(s: RetentionRuleConfig): boolean {
  return [s.latest, s.pushedwithin, s.pulledwithin, s.semver].some((x) => x !== undefined);
}

/** True when a rule judges tags at all (a rule with only `untagged` does not). */
function judgesTags(r: RetentionRule): boolean {
  return r.spec.tags !== undefined || hasCriteria(r.spec);
}

/** A day for people: the verdicts speak in dates, the rules in durations. */
export function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A tag read as a version. */
type Versioned = { t: TagTimes; v: SemVer };

/** Why one rule keeps each tag it keeps (`latest 5`), computed over that rule's own tags only. */
function keptBy(r: RetentionRule, tags: TagTimes[], now: number): Map<string, string> {
  const s = r.spec;
  const mine = tags.filter((t) => !r.tags || r.tags(t.tag));
  const out = new Map<string, string>();
  const keep = (t: string, why: string): void => {
    if (!out.has(t)) out.set(t, why);
  };
  if (!hasCriteria(s)) for (const t of mine) keep(t.tag, `tags ${s.tags!.join(', ')}`);
  if (s.latest !== undefined) {
    // Each rule counts its own tags, whatever other rules say (Zot #3804 deleted every tag of one prefix this way).
    const recent = [...mine].sort((a, b) => b.pushed - a.pushed || (a.tag < b.tag ? 1 : -1)).slice(0, s.latest);
    for (const t of recent) keep(t.tag, `latest ${s.latest}`);
  }
  if (r.pushedWithinMs !== undefined) {
    for (const t of mine) {
      if (now - t.pushed <= r.pushedWithinMs) keep(t.tag, `pushed within ${s.pushedwithin}: ${day(t.pushed)}`);
    }
  }
  if (r.pulledWithinMs !== undefined) {
    for (const t of mine) {
      if (t.pulled === undefined || now - t.pulled > r.pulledWithinMs) continue;
      keep(t.tag, `pulled within ${s.pulledwithin}: last ${day(t.pulled)}`);
    }
  }
  if (s.semver !== undefined) {
    const versioned = mine
      .map((t) => ({ t, v: versionOf(t.tag) }))
      .filter((x): x is Versioned => x.v !== null && satisfies(x.v, s.semver!, { loose: true }));
    const byMinor = new Map<string, Versioned[]>();
    for (const x of versioned) {
      const minor = `${x.v.major}.${x.v.minor}`;
      byMinor.set(minor, [...(byMinor.get(minor) ?? []), x]);
    }
    for (const [minor, xs] of byMinor) {
      xs.sort((a, b) => rcompare(a.v, b.v) || (a.t.tag < b.t.tag ? -1 : 1));
      const kept = s.perminor === undefined ? xs : xs.slice(0, s.perminor);
      const why = `semver ${s.semver}${s.perminor === undefined ? '' : `, latest ${s.perminor} of ${minor}`}`;
      for (const x of kept) keep(x.t.tag, why);
    }
  }
  return out;
}

/** What a rule would have needed to keep a tag, for the reason of a deletion. */
function missed(r: RetentionRule, t: TagTimes): string {
  const s = r.spec;
  if (r.tags && !r.tags(t.tag)) return `${ruleLabel(r)} speaks only of tags ${s.tags!.join(', ')}`;
  const parts: string[] = [];
  if (s.latest !== undefined) parts.push(`not among its latest ${s.latest}`);
  if (s.pushedwithin !== undefined) parts.push(`keeps ${s.pushedwithin} since a push`);
  if (s.pulledwithin !== undefined) parts.push(`keeps ${s.pulledwithin} since a pull`);
  if (s.semver !== undefined) {
    const which = s.perminor === undefined ? '' : `the latest ${s.perminor} per minor of `;
    parts.push(`keeps ${which}semver ${s.semver}`);
  }
  return `${ruleLabel(r)} ${parts.join(', ')}`;
}

/**
 * Judges a repository's tags under the rules that apply to it (from `rulesFor`): a tag is kept when any rule keeps
 * it, and each verdict names the rule that decided. Null when no rule judges tags: then every tag stays. Artifact tags
 * (`sha256-<hex>.sig`) are not given here: they follow their subject. Pure.
 */
export function judgeTags(rules: RetentionRule[], tags: TagTimes[], now: number): TagVerdict[] | null {
  const judging = rules.filter(judgesTags);
  if (judging.length === 0) return null;
  const reasons = judging.map((r) => ({ r, kept: keptBy(r, tags, now) }));
  return tags.map((t) => {
    for (const { r, kept } of reasons) {
      const why = kept.get(t.tag);
      if (why === undefined) continue;
      return { tag: t.tag, kept: true, rule: r.index, reason: `kept by ${ruleLabel(r)} (${why})` };
    }
    const pulled = t.pulled === undefined ? 'never pulled' : `pulled last ${day(t.pulled)}`;
    const facts = `pushed ${day(t.pushed)}, ${pulled}`;
    return { tag: t.tag, kept: false, reason: `deleted: ${facts}; ${judging.map((r) => missed(r, t)).join('; ')}` };
  });
}

/** How long untagged manifests stay under these rules (the longest any rule gives), or undefined when none says. */
export function untaggedKeepMs(rules: RetentionRule[]): { ms: number; rule: RetentionRule } | undefined {
  let best: { ms: number; rule: RetentionRule } | undefined;
  for (const r of rules) {
    if (r.untaggedMs !== undefined && (!best || r.untaggedMs > best.ms)) best = { ms: r.untaggedMs, rule: r };
  }
  return best;
}
