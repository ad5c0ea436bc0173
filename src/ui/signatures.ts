import type { Digest } from '../oci/digest.js';
import type { RepositoryName } from '../oci/name.js';
import type { RegistryContext } from '../registry/context.js';
import { looksLikeHost, registryHost } from '../registry/registry-name.js';
import { StorageSource } from '../transport/storage-source.js';

/** One signature as a page shows it: where it was found, whether it counts, and who signed. */
export interface SignatureView {
  where: string;
  kind: string;
  accepted: boolean;
  reason: string;
  key?: string;
  signer?: string;
}

/** What the `trust:` rules say of one image: the rule, the verdict and each signature's own verdict. */
export interface TrustView {
  /** Absent when no rule requires signatures of this repository on pull. */
  rule?: string;
  /** `verified`: a rule is satisfied; `refused`: a rule is not; `none`: no rule applies. */
  state: 'verified' | 'refused' | 'none';
  reason: string;
  signatures: SignatureView[];
}

/** How long a verdict is reused for the same name and digest: the verification cache keeps the crypto cheaper still. */
const TTL_MS = 10_000;

/**
 * Judges images as a pull would (`registry/trust-pull.ts`): by the rule covering the repository on pull and
 * the name identity rules see, and says who signed. Verdicts are kept a few seconds, so a page of 50 tags
 * costs one verification per distinct image and a reload costs none.
 */
export class TrustViews {
  private readonly recent = new Map<string, { view: TrustView; until: number }>();

  constructor(private readonly ctx: RegistryContext) {}

  /** The verdict for `repository:tag` (or `@digest` when `tag` is undefined) naming `digest`. */
  async of(repository: RepositoryName, digest: Digest, tag: string | undefined): Promise<TrustView> {
    const trust = this.ctx.trust;
    if (!trust?.ruleFor(repository, 'pull'))
      return { state: 'none', reason: 'no trust rule requires signatures here', signatures: [] };
    const named = looksLikeHost(repository.split('/')[0]!)
      ? repository
      : `${registryHost(this.ctx.config) ?? 'localhost'}/${repository}`;
    const ref = tag === undefined ? `${named}@${digest}` : `${named}:${tag}`;
    const key = `${ref} ${digest}`;
    const hit = this.recent.get(key);
    if (hit && hit.until > Date.now()) return hit.view;
    const repo = this.ctx.repo(repository);
    const v = await trust.check(new StorageSource(repo, this.ctx.blobs, digest), repository, 'pull', digest, ref);
    const signatures: SignatureView[] = [];
    for (const r of v.decision?.results ?? []) {
      for (const s of r.signatures) {
        signatures.push({
          where: s.where,
          kind: s.kind,
          accepted: s.accepted,
          reason: s.reason,
          ...(s.key ? { key: s.key } : {}),
          ...(s.signer ? { signer: s.signer } : {}),
        });
      }
    }
    const view: TrustView = {
      ...(v.rule ? { rule: v.rule } : {}),
      state: v.allowed ? 'verified' : 'refused',
      reason: v.reason,
      signatures,
    };
    if (this.recent.size >= 10_000) this.recent.clear();
    this.recent.set(key, { view, until: Date.now() + TTL_MS });
    return view;
  }
}
