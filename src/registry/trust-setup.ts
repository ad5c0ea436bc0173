import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Digest } from '../oci/digest.js';
import {
  compileTrustRules,
  PUBLIC_GOOD_ROOT,
  trustLabel,
  trustRuleFor,
  type TrustPoint,
  type TrustRule,
} from '../policy/trust.js';
import {
  checkIdentityRule,
  checkImageTrust,
  checkKeylessIdentity,
  NOTATION_LEVELS,
  publicGoodRoot,
  readTrustStore,
  type NotationStore,
  readTrustedRoot,
  trustedKeyFromPem,
  VerificationCache,
  isEvidenceBytes,
  type IdentityRule,
  type PolicyDecision,
  type SigstoreRoot,
  type TrustRequirement,
  type TrustedKey,
} from '../sign/index.js';
import type { ImageSource } from '../transport/transport.js';

/** The outcome of a trust check at one place: allowed, or refused with one line that says why. */
export interface TrustVerdict {
  allowed: boolean;
  /** Absent when no rule requires anything of the image there. */
  rule?: string;
  reason: string;
  /** The full decision (requirement, keys tried, each signature's verdict), when a rule applied. */
  decision?: PolicyDecision;
}

/**
 * The `trust:` section at run time: keys read once, rules compiled, one verification cache. Every place
 * images move (pull, cache, mirror, passthrough, copy) asks `check` with a source that can show the
 * image's signatures; the answer names the rule, the keys tried and what was found.
 */
export class Trust {
  private readonly rules: TrustRule[];
  private readonly keys = new Map<string, TrustedKey>();
  private readonly roots = new Map<string, SigstoreRoot>();
  private readonly stores = new Map<string, NotationStore>();
  readonly cache = new VerificationCache();

  constructor(config: NonNullable<Config['trust']>, sets: Record<string, string[]> = {}) {
    for (const [name, path] of Object.entries(config.keys)) {
      let pem: string;
      try {
        pem = readFileSync(path, 'utf8');
      } catch (e) {
        throw new Error(
          `trust.keys.${name}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      try {
        this.keys.set(name, trustedKeyFromPem(pem, name));
      } catch (e) {
        throw new Error(`trust.keys.${name}: ${path} is not a usable public key: ${(e as Error).message}`);
      }
    }
    this.rules = compileTrustRules(config, sets);
    for (const [name, path] of Object.entries(config.roots ?? {})) {
      try {
        this.roots.set(name, readTrustedRoot(path, name));
      } catch (e) {
        throw new Error(`trust.roots.${name}: ${(e as Error).message}`);
      }
    }
    for (const [name, dir] of Object.entries(config.trustStores ?? {})) {
      try {
        this.stores.set(name, readTrustStore(dir, name));
      } catch (e) {
        throw new Error(`trust.trustStores.${name}: ${(e as Error).message}`);
      }
    }
    for (const r of this.rules) {
      for (const [j, id] of r.spec.identities.entries()) {
        try {
          checkKeylessIdentity(id);
        } catch (e) {
          throw new Error(`trust.require rule ${r.index} identities[${j}]: ${(e as Error).message}`);
        }
      }
      const wanted = r.spec.identities.length ? (r.spec.roots ?? [PUBLIC_GOOD_ROOT]) : [];
      if (wanted.includes(PUBLIC_GOOD_ROOT) && !this.roots.has(PUBLIC_GOOD_ROOT))
        this.roots.set(PUBLIC_GOOD_ROOT, publicGoodRoot());
    }
    for (const r of this.rules) {
      // The same checks a containers-policy.json or --identity-rule gets, so one rule is accepted (or not) in all three.
      if (typeof r.spec.identity === 'string') continue;
      try {
        checkIdentityRule(r.spec.identity);
      } catch (e) {
        throw new Error(`trust.require rule ${r.index}: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  /**
   * Whether manifest bytes are evidence (a signature, attestation or SBOM), which no rule judges. Here, not
   * imported by the pull path, so a registry without `trust:` never loads the signing code.
   */
  isEvidence(bytes: Uint8Array): boolean {
    return isEvidenceBytes(bytes);
  }

  // Rules never change at run time, so each (name, place) is matched once: a warm pull then pays a map lookup, not the globs.
  private readonly ruleCache = new Map<string, TrustRule | null>();

  /** The rule that covers an image name at a place, or undefined (nothing required). */
  ruleFor(repository: string, where: TrustPoint): TrustRule | undefined {
    const key = `${where} ${repository}`;
    let r = this.ruleCache.get(key);
    if (r === undefined) {
      r = trustRuleFor(this.rules, repository, where) ?? null;
      if (this.ruleCache.size >= 10_000) this.ruleCache.clear();
      this.ruleCache.set(key, r);
    }
    return r ?? undefined;
  }

  // A rule's requirements: its cosign keys or keyless identities (any one signature), and a notation signature when it asks for one.
  private requirements(rule: TrustRule): TrustRequirement[] {
    const out: TrustRequirement[] = [];
    if (rule.spec.keys.length || rule.spec.identities.length) out.push(this.requirement(rule));
    const n = rule.spec.notation;
    if (n) {
      const stores = n.trustStores.map((s) => this.stores.get(s)!);
      const req: TrustRequirement = { type: 'notationSigned', stores, identities: n.identities };
      // Strict with no override is the default requirement; anything else carries its level for the verdicts.
      if (n.level !== 'strict' || n.override) {
        Object.assign(req, { level: n.level, enforcement: { ...NOTATION_LEVELS[n.level], ...n.override } });
      }
      out.push(req);
    }
    return out;
  }

  private requirement(rule: TrustRule): TrustRequirement {
    const id = rule.spec.identity;
    const signedIdentity: IdentityRule = typeof id === 'string' ? { type: id } : id;
    const req: TrustRequirement = {
      type: 'sigstoreSigned',
      keys: rule.spec.keys.map((k) => this.keys.get(k)!),
      signedIdentity,
    };
    if (rule.spec.identities.length) {
      const roots = (rule.spec.roots ?? [PUBLIC_GOOD_ROOT]).map((n) => this.roots.get(n)!);
      req.keyless = { roots, identities: rule.spec.identities };
    }
    return req;
  }

  /**
   * Checks the signatures `source` shows for `digest` against the rule covering `repository` at `where`.
   * `dockerReference` is the name the image is known by here (`host/repo:tag`), which identity rules judge.
   */
  async check(
    source: ImageSource,
    repository: string,
    where: TrustPoint,
    digest: Digest,
    dockerReference: string,
  ): Promise<TrustVerdict> {
    const rule = this.ruleFor(repository, where);
    if (!rule) return { allowed: true, reason: 'no trust rule applies' };
    const res = await checkImageTrust(source, { digest, dockerReference }, this.requirements(rule), {
      cache: this.cache,
    });
    return {
      allowed: res.decision.allowed,
      rule: trustLabel(rule),
      reason: `${trustLabel(rule)}: ${res.decision.summary}`,
      decision: res.decision,
    };
  }
}

/** The trust section of a config at run time, or undefined when it has none. */
export function buildTrust(config: Config): Trust | undefined {
  if (!config.trust || config.trust.require.length === 0) return undefined;
  return new Trust(config.trust, config.access?.sets ?? {});
}
