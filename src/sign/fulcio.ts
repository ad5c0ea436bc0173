import type { X509Certificate } from '@sigstore/core';
import { sigstoreCore } from './sigstore.js';

// Who a Fulcio certificate says signed: the SAN (an email or a workflow URI), the OIDC issuer, and the CI
// claims Fulcio copies from the token. Pure: certificate bytes in, claims out; and the matching of claims
// against identity rules as cosign and the sigstore policy-controller spell them.

/** Fulcio's extension arc (1.3.6.1.4.1.57264.1.N). */
const ARC = '1.3.6.1.4.1.57264.1.';

/** The CI claims Fulcio records; newer names (.1.9+) preferred, the deprecated .1.2–.1.6 as fallback. */
export interface WorkflowClaims {
  /** `owner/repo` (.1.5, or the path of .1.12 source repository URI). */
  repository?: string;
  /** `refs/tags/v1` (.1.14, or .1.6). */
  ref?: string;
  /** `push`, `release`, `workflow_dispatch` (.1.20, or .1.2). */
  trigger?: string;
  /** Commit the workflow ran at (.1.13, or .1.3). */
  sha?: string;
  /** Workflow name (.1.4). */
  workflowName?: string;
  /** The workflow file that ran, as a URI (.1.9 build signer URI). */
  buildSignerURI?: string;
  /** `github-hosted` or `self-hosted` (.1.11). */
  runnerEnvironment?: string;
}

/** The identity a keyless signature was made under. */
export interface CertificateIdentity {
  /** The SAN: an email, or a URI such as `https://github.com/o/r/.github/workflows/x.yml@refs/tags/v1`. */
  subject?: string;
  /** The OIDC issuer (`https://token.actions.githubusercontent.com`). */
  issuer?: string;
  workflow: WorkflowClaims;
}

// .1.1 to .1.6 hold the raw string; .1.8 onwards hold a DER UTF8String, as Fulcio's docs say.
function rawClaim(cert: X509Certificate, n: number): string | undefined {
  const ext = cert.extension(`${ARC}${n}`);
  return ext ? ext.value.toString('utf8') : undefined;
}

function derClaim(cert: X509Certificate, n: number): string | undefined {
  const ext = cert.extension(`${ARC}${n}`);
  if (!ext) return undefined;
  try {
    // The extension's OCTET STRING holds the DER UTF8String; its first sub-object is the string.
    return ext.valueObj.subs[0]?.value.toString('utf8');
  } catch {
    return undefined;
  }
}

function repositoryOf(uri: string | undefined): string | undefined {
  const m = uri ? /^https:\/\/[^/]+\/([^/]+\/[^/]+?)(?:\.git)?$/.exec(uri) : null;
  return m ? m[1] : undefined;
}

/** The identity a Fulcio certificate (DER or PEM) carries. */
export function certificateIdentity(cert: X509Certificate | Buffer): CertificateIdentity {
  const c = Buffer.isBuffer(cert) ? sigstoreCore().X509Certificate.parse(Buffer.from(cert)) : cert;
  const prune = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const workflow = prune<WorkflowClaims>({
    repository: repositoryOf(derClaim(c, 12)) ?? rawClaim(c, 5),
    ref: derClaim(c, 14) ?? rawClaim(c, 6),
    trigger: derClaim(c, 20) ?? rawClaim(c, 2),
    sha: derClaim(c, 13) ?? rawClaim(c, 3),
    workflowName: rawClaim(c, 4),
    buildSignerURI: derClaim(c, 9),
    runnerEnvironment: derClaim(c, 11),
  });
  return prune<CertificateIdentity>({ subject: c.subjectAltName, issuer: derClaim(c, 8) ?? rawClaim(c, 1), workflow });
}

/** One keyless identity a rule accepts: each field given must match (exact, or a regular expression). */
export interface KeylessIdentity {
  issuer?: string;
  issuerRegExp?: string;
  subject?: string;
  subjectRegExp?: string;
  /** GitHub Actions claims, each compared exactly (`ref` may end in `*` for a prefix, as `refs/tags/*`). */
  github?: { repository?: string; ref?: string; trigger?: string; sha?: string };
}

/** Thrown for an identity rule that names nothing or has a bad regular expression. */
export class KeylessIdentityError extends Error {
  override name = 'KeylessIdentityError';
}

/** Checks a rule: it must pin the issuer and the subject (each exact or a regexp), as cosign requires; regexps must compile. */
export function checkKeylessIdentity(id: KeylessIdentity): KeylessIdentity {
  if (id.issuer === undefined && id.issuerRegExp === undefined)
    throw new KeylessIdentityError('a keyless identity needs issuer or issuerRegExp');
  if (id.subject === undefined && id.subjectRegExp === undefined)
    throw new KeylessIdentityError('a keyless identity needs subject or subjectRegExp');
  for (const re of [id.issuerRegExp, id.subjectRegExp]) {
    if (re === undefined) continue;
    try {
      new RegExp(re);
    } catch (e) {
      throw new KeylessIdentityError(`bad regular expression ${JSON.stringify(re)}: ${(e as Error).message}`);
    }
  }
  return id;
}

// cosign's --certificate-identity-regexp is Go's regexp.MatchString: unanchored; write ^…$ to pin the whole value.
const compiled = new Map<string, RegExp>();
function regexp(text: string): RegExp {
  let r = compiled.get(text);
  if (!r) {
    r = new RegExp(text);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(text, r);
  }
  return r;
}

function field(
  what: string,
  value: string | undefined,
  exact: string | undefined,
  re: string | undefined,
): string | undefined {
  if (exact !== undefined && value !== exact) return what;
  if (re !== undefined && (value === undefined || !regexp(re).test(value))) return what;
  return undefined;
}

const refMatches = (want: string, got: string | undefined): boolean =>
  got !== undefined && (want.endsWith('*') ? got.startsWith(want.slice(0, -1)) : got === want);

/** What an identity rule wants, in one phrase, for messages. */
export function describeKeylessIdentity(id: KeylessIdentity): string {
  const parts: string[] = [];
  if (id.subject !== undefined) parts.push(`subject ${id.subject}`);
  if (id.subjectRegExp !== undefined) parts.push(`subject matching /${id.subjectRegExp}/`);
  if (id.issuer !== undefined) parts.push(`issuer ${id.issuer}`);
  if (id.issuerRegExp !== undefined) parts.push(`issuer matching /${id.issuerRegExp}/`);
  for (const [k, v] of Object.entries(id.github ?? {})) if (v !== undefined) parts.push(`github ${k} ${v}`);
  return parts.join(', ');
}

/** Who signed, in one phrase: the subject, then the issuer and the workflow claims that rules look at. */
export function describeSigner(who: CertificateIdentity): string {
  const w = who.workflow;
  const extra = [
    w.repository && `repository ${w.repository}`,
    w.ref && `ref ${w.ref}`,
    w.trigger && `trigger ${w.trigger}`,
  ].filter(Boolean);
  return `${who.subject ?? '(no subject)'} (issuer ${who.issuer ?? 'unknown'}${extra.length ? `, ${extra.join(', ')}` : ''})`;
}

/** Whether a signer matches one identity; when not, the first field that differs (`subject`, `issuer`, `github ref`). */
export function matchKeylessIdentity(
  id: KeylessIdentity,
  who: CertificateIdentity,
): { ok: true } | { ok: false; differs: string } {
  const miss =
    field('subject', who.subject, id.subject, id.subjectRegExp) ??
    field('issuer', who.issuer, id.issuer, id.issuerRegExp);
  if (miss) return { ok: false, differs: miss };
  const g = id.github ?? {};
  const w = who.workflow;
  if (g.repository !== undefined && w.repository !== g.repository) return { ok: false, differs: 'github repository' };
  if (g.ref !== undefined && !refMatches(g.ref, w.ref)) return { ok: false, differs: 'github ref' };
  if (g.trigger !== undefined && w.trigger !== g.trigger) return { ok: false, differs: 'github trigger' };
  if (g.sha !== undefined && w.sha !== g.sha) return { ok: false, differs: 'github sha' };
  return { ok: true };
}
