import picomatch from 'picomatch';
import { formatPlatform, parsePlatform, platformMatches, type Platform } from '../oci/platform.js';
import { compilePatterns, PolicyError, type Pattern } from './patterns.js';
import { ANONYMOUS, type Target } from './types.js';

/**
 * Flow rules: which upstream images may come in (the pull-through cache, mirror jobs, passthrough
 * and `sluice copy` all ask here). Ordered; the first rule that applies decides; none: nothing flows.
 */
export interface FlowSpec {
  name?: string;
  /** Image globs in the access rules' pattern language, over full upstream names (`docker.io/library/*`). */
  images: string[];
  /** Tag filter: globs, or regular expressions written `/…/`. No filter means every tag. */
  tags?: { include?: string[]; exclude?: string[] };
  /** Platforms whose images may come in (`linux/amd64`); an index is kept whole, others' children are not fetched. */
  platforms?: string[];
  /** A rule that refuses what it matches. */
  deny?: boolean;
  /** Bring the upstream's referrers and cosign tags (`sha256-<hex>.sig/.att/.sbom`) along. */
  referrers?: boolean;
  /** How long a fetched tag is trusted before it is checked again upstream (overrides the upstream's ttl). */
  ttl?: string;
  /** Names of trust keys whose signature is required (enforced by the trust part). */
  keys?: string[];
  /** Cached images this rule let in leave the cache when nobody pulled them this long (overrides the upstream's). */
  evict?: { unpulled?: string | undefined };
}

/** A flow rule ready to be evaluated. */
export interface CompiledFlow {
  index: number;
  spec: FlowSpec;
  images: Pattern[];
  include?: TagMatcher[];
  exclude: TagMatcher[];
  platforms?: Platform[];
}

interface TagMatcher {
  text: string;
  test(tag: string): boolean;
}

/** The compiled `flows:` section. */
export interface FlowPolicy {
  flows: CompiledFlow[];
}

/** What may flow, and why: the deciding rule, or the reason none applied. */
export interface FlowDecision {
  allowed: boolean;
  /** The deciding rule (absent when none applied). */
  flow?: CompiledFlow;
  /** One line for `DENIED` messages, logs and `sluice policy explain`. */
  reason: string;
}

/** What a flow decision is about: a full upstream name with a tag or digest. */
export type FlowTarget = Pick<Target, 'repository' | 'tag' | 'digest'> & { repository: string };

function tagMatcher(text: string): TagMatcher {
  const re = /^\/(.*)\/$/.exec(text);
  if (re) {
    let compiled: RegExp;
    try {
      compiled = new RegExp(re[1]!);
    } catch (e) {
      throw new PolicyError(`invalid tag regular expression ${text}: ${(e as Error).message}`);
    }
    return { text, test: (t) => compiled.test(t) };
  }
  const m = picomatch(text, { dot: true });
  return { text, test: (t) => m(t) };
}

/** How a flow rule is named in messages: `flow rule 2` or `flow rule 2 "hive-mind"`. */
export function flowLabel(f: Pick<CompiledFlow, 'index' | 'spec'>): string {
  return f.spec.name ? `flow rule ${f.index} "${f.spec.name}"` : `flow rule ${f.index}`;
}

function compileFlow(spec: FlowSpec, i: number, sets: Record<string, string[]>): CompiledFlow {
  try {
    const f: CompiledFlow = {
      index: i + 1,
      spec,
      images: compilePatterns(spec.images, sets),
      exclude: (spec.tags?.exclude ?? []).map(tagMatcher),
    };
    if (spec.tags?.include) f.include = spec.tags.include.map(tagMatcher);
    if (spec.platforms) f.platforms = spec.platforms.map(parsePlatform);
    return f;
  } catch (e) {
    throw new PolicyError(`${flowLabel({ index: i + 1, spec })}: ${(e as Error).message}`);
  }
}

/** Compiles `flows:`; throws PolicyError naming the rule for a bad pattern or platform. */
export function compileFlows(specs: FlowSpec[], sets: Record<string, string[]> = {}): FlowPolicy {
  return { flows: specs.map((spec, i) => compileFlow(spec, i, sets)) };
}

/** Every rule of `flows:` that does not compile, one line each (a config check reports them all at once). */
export function flowProblems(specs: FlowSpec[], sets: Record<string, string[]> = {}): string[] {
  const problems: string[] = [];
  specs.forEach((spec, i) => {
    try {
      compileFlow(spec, i, sets);
    } catch (e) {
      problems.push(`flows: ${(e as Error).message}`);
    }
  });
  return problems;
}

function targetText(t: FlowTarget): string {
  return `${t.repository}${t.tag ? `:${t.tag}` : ''}${t.digest ? `@${t.digest}` : ''}`;
}

/** True when a rule lets every tag through (so a digest alone can be judged by name). */
export function allowsEveryTag(f: CompiledFlow): boolean {
  return (
    (f.include === undefined || f.include.some((m) => m.text === '*' || m.text === '**')) && f.exclude.length === 0
  );
}

/** Why a rule's tag filter refuses a tag, or undefined when it lets it through. */
function tagRefusal(f: CompiledFlow, tag: string): string | undefined {
  const ex = f.exclude.find((m) => m.test(tag));
  if (ex) return `excludes tag ${tag} (${ex.text})`;
  if (f.include && !f.include.some((m) => m.test(tag)))
    return `includes only tags ${f.include.map((m) => m.text).join(', ')}`;
  return undefined;
}

/**
 * Decides whether an upstream image may come in. A rule applies when one of its image globs matches
 * the name and its tag filter lets the tag through; a digest without a tag passes only a rule that
 * lets every tag through, since a digest cannot be proven to be one of some tags without asking for
 * all of them (the cache lets digests that an approved tag's index lists through on its own).
 */
export function decideFlow(policy: FlowPolicy, target: FlowTarget): FlowDecision {
  const what = targetText(target);
  let nearest: string | undefined;
  for (const f of policy.flows) {
    const p = f.images.find((x) => x.matches(target, ANONYMOUS));
    if (!p) continue;
    const label = `${flowLabel(f)} (${p.text})`;
    if (f.spec.deny) {
      // A deny rule with a tag filter denies only those tags.
      if (target.tag !== undefined && (f.include || f.exclude.length) && tagRefusal(f, target.tag)) continue;
      // An earlier rule that matched the name but filtered the tag out is why this one was reached: say so first.
      const why = nearest ? `${nearest}, and then ${label} denies it` : `${label} denies it`;
      return { allowed: false, flow: f, reason: `${what} is not an approved upstream image: ${why}` };
    }
    if (target.tag !== undefined) {
      const refused = tagRefusal(f, target.tag);
      if (refused) {
        nearest ??= `${label} matches the name but ${refused}`;
        continue;
      }
    } else if (!allowsEveryTag(f)) {
      nearest ??= `${label} allows only some tags, and a digest not reached through an approved tag cannot be shown to be one of them (pull it by tag)`;
      continue;
    }
    return { allowed: true, flow: f, reason: `${what} is approved by ${label}` };
  }
  return { allowed: false, reason: `${what} is not an approved upstream image: ${nearest ?? 'no flow rule matches'}` };
}

/** Whether a rule lets images of this platform in; rules without `platforms` let every platform in. */
export function platformAllowed(f: CompiledFlow | undefined, p: Platform | undefined): boolean {
  if (!f?.platforms) return true;
  if (!p) return false;
  return f.platforms.some((w) => platformMatches(w, p));
}

/** The platforms a rule allows, for messages: `linux/amd64, linux/arm64`. */
export function platformsText(f: CompiledFlow): string {
  return (f.platforms ?? []).map(formatPlatform).join(', ');
}

/** A tag filter (globs or `/regular expressions/`): every tag `include` names (all when absent), less those `exclude` names. */
export function compileTagFilter(include: string[] | undefined, exclude: string[] = []): (tag: string) => boolean {
  const inc = include?.map(tagMatcher);
  const exc = exclude.map(tagMatcher);
  return (tag) => (inc === undefined || inc.some((m) => m.test(tag))) && !exc.some((m) => m.test(tag));
}
