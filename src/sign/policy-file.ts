import type { Reference } from '../oci/reference.js';
import { checkIdentityRule, IdentityRuleError } from './identity.js';
import type { IdentityRule, KeylessTrust, TrustedKey, TrustRequirement } from './types.js';

/** Thrown for a containers-policy.json Sluice cannot apply; the message names the JSON path. */
export class PolicyFileError extends Error {}

/** A requirement as the file writes it, with key files not yet read. */
export type RawRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | {
      type: 'sigstoreSigned';
      keyPaths: string[];
      keyDatas: string[];
      fulcio?: RawFulcio;
      signedIdentity: IdentityRule;
    };

/** containers-policy.json's keyless form: `fulcio{caPath|caData, oidcIssuer, subjectEmail}` and the Rekor keys. */
export interface RawFulcio {
  caPath?: string;
  caData?: string;
  oidcIssuer: string;
  subjectEmail: string;
  rekorKeyPaths: string[];
  rekorKeyDatas: string[];
}

/** A parsed containers-policy.json: the global default and per-transport scopes. */
export interface ParsedPolicy {
  default: RawRequirement[];
  transports: Record<string, Record<string, RawRequirement[]>>;
}

/** A policy with every key read: what lookups and evaluation use. */
export interface TrustPolicy {
  default: TrustRequirement[];
  transports: Record<string, Record<string, TrustRequirement[]>>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyFields(v: Json, allowed: string[], where: string): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k))
      throw new PolicyFileError(
        `${where}: unknown field "${k}" (containers-policy.json is strict: a typo must not weaken the policy)`,
      );
  }
}

const UNSUPPORTED_SIGSTORE = ['pki'];
const REKOR_FIELDS = ['rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'];

// The keyless form as containers/image reads it: one CA (path or data), an issuer and an email, and a Rekor key.
function parseFulcio(v: Json, where: string): RawFulcio {
  const f = v.fulcio;
  if (!isObject(f)) throw new PolicyFileError(`${where}.fulcio must be an object`);
  onlyFields(f, ['caPath', 'caData', 'oidcIssuer', 'subjectEmail'], `${where}.fulcio`);
  if ((f.caPath === undefined) === (f.caData === undefined))
    throw new PolicyFileError(`${where}.fulcio: exactly one of caPath and caData must be present`);
  for (const k of ['caPath', 'caData', 'oidcIssuer', 'subjectEmail']) {
    if (f[k] !== undefined && (typeof f[k] !== 'string' || f[k] === ''))
      throw new PolicyFileError(`${where}.fulcio.${k} must be a non-empty string`);
  }
  if (f.oidcIssuer === undefined || f.subjectEmail === undefined)
    throw new PolicyFileError(`${where}.fulcio: oidcIssuer and subjectEmail are required`);
  const rekorKeyPaths = stringList(v, 'rekorPublicKeyPath', 'rekorPublicKeyPaths', where);
  const rekorKeyDatas = stringList(v, 'rekorPublicKeyData', 'rekorPublicKeyDatas', where);
  if (rekorKeyPaths.length + rekorKeyDatas.length === 0)
    throw new PolicyFileError(
      `${where}: fulcio needs a Rekor key (rekorPublicKeyPath or rekorPublicKeyData): Sluice verifies keyless signatures offline, by their log proof`,
    );
  const out: RawFulcio = {
    oidcIssuer: f.oidcIssuer as string,
    subjectEmail: f.subjectEmail as string,
    rekorKeyPaths,
    rekorKeyDatas,
  };
  if (f.caPath !== undefined) out.caPath = f.caPath as string;
  else out.caData = f.caData as string;
  return out;
}

function stringList(v: Json, one: string, many: string, where: string): string[] {
  const out: string[] = [];
  if (v[one] !== undefined) {
    if (typeof v[one] !== 'string' || v[one] === '')
      throw new PolicyFileError(`${where}.${one} must be a non-empty string`);
    out.push(v[one] as string);
  }
  if (v[many] !== undefined) {
    const list = v[many];
    if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || x === ''))
      throw new PolicyFileError(`${where}.${many} must be a non-empty list of strings`);
    out.push(...(list as string[]));
  }
  return out;
}

function parseIdentity(v: unknown, where: string): IdentityRule {
  if (v === undefined) return { type: 'matchRepoDigestOrExact' };
  if (!isObject(v) || typeof v.type !== 'string') throw new PolicyFileError(`${where} must be an object with a "type"`);
  const fields: Record<string, string[]> = {
    matchExact: [],
    matchRepoDigestOrExact: [],
    matchRepository: [],
    exactReference: ['dockerReference'],
    exactRepository: ['dockerRepository'],
    remapIdentity: ['prefix', 'signedPrefix'],
  };
  const allowed = fields[v.type];
  if (!allowed) throw new PolicyFileError(`${where}.type "${v.type}" is not one of ${Object.keys(fields).join(', ')}`);
  onlyFields(v, ['type', ...allowed], where);
  try {
    return checkIdentityRule(v as unknown as IdentityRule);
  } catch (e) {
    if (e instanceof IdentityRuleError) throw new PolicyFileError(`${where}: ${e.message}`);
    throw e;
  }
}

function parseRequirement(v: unknown, where: string): RawRequirement {
  if (!isObject(v) || typeof v.type !== 'string') throw new PolicyFileError(`${where} must be an object with a "type"`);
  switch (v.type) {
    case 'insecureAcceptAnything':
    case 'reject':
      onlyFields(v, ['type'], where);
      return { type: v.type };
    case 'sigstoreSigned': {
      const unsupported = Object.keys(v).filter((k) => UNSUPPORTED_SIGSTORE.includes(k));
      if (unsupported.length) {
        throw new PolicyFileError(
          `${where}: ${unsupported.join(', ')} (a private PKI) is not supported by Sluice: use keyPath/keyPaths/keyData or fulcio`,
        );
      }
      onlyFields(
        v,
        ['type', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', ...REKOR_FIELDS, 'signedIdentity'],
        where,
      );
      if (v.fulcio !== undefined) {
        const keyed = ['keyPath', 'keyPaths', 'keyData', 'keyDatas'].filter((k) => v[k] !== undefined);
        if (keyed.length) throw new PolicyFileError(`${where}: fulcio and ${keyed.join(', ')} exclude each other`);
        return {
          type: 'sigstoreSigned',
          keyPaths: [],
          keyDatas: [],
          fulcio: parseFulcio(v, where),
          signedIdentity: parseIdentity(v.signedIdentity, `${where}.signedIdentity`),
        };
      }
      const rekor = REKOR_FIELDS.filter((k) => v[k] !== undefined);
      if (rekor.length)
        throw new PolicyFileError(
          `${where}: ${rekor.join(', ')} without fulcio is not supported by Sluice (key signatures are checked without the log)`,
        );
      const keyPaths = stringList(v, 'keyPath', 'keyPaths', where);
      const keyDatas = stringList(v, 'keyData', 'keyDatas', where);
      const kinds = ['keyPath', 'keyPaths', 'keyData', 'keyDatas'].filter((k) => v[k] !== undefined);
      if (kinds.length !== 1)
        throw new PolicyFileError(
          `${where}: exactly one of keyPath, keyPaths, keyData and keyDatas must be present (found ${kinds.length ? kinds.join(', ') : 'none'})`,
        );
      return {
        type: 'sigstoreSigned',
        keyPaths,
        keyDatas,
        signedIdentity: parseIdentity(v.signedIdentity, `${where}.signedIdentity`),
      };
    }
    case 'signedBy':
      throw new PolicyFileError(
        `${where}: signedBy (GPG simple signing) is not supported by Sluice; it verifies sigstoreSigned`,
      );
    default:
      throw new PolicyFileError(
        `${where}.type "${v.type}" is not one of insecureAcceptAnything, reject, sigstoreSigned`,
      );
  }
}

function parseList(v: unknown, where: string): RawRequirement[] {
  if (!Array.isArray(v)) throw new PolicyFileError(`${where} must be a list of requirements`);
  // containers/image refuses an empty list: it would silently mean "accept" to some readers.
  if (v.length === 0)
    throw new PolicyFileError(`${where} is empty: write [{"type":"insecureAcceptAnything"}] to accept anything`);
  return v.map((r, i) => parseRequirement(r, `${where}[${i}]`));
}

/** Parses containers-policy.json text strictly (unknown fields, types and empty lists are errors), without reading key files. */
export function parsePolicy(text: string, name = 'policy'): ParsedPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new PolicyFileError(`${name}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw new PolicyFileError(`${name}: not a JSON object`);
  onlyFields(doc, ['default', 'transports'], name);
  if (doc.default === undefined) throw new PolicyFileError(`${name}: "default" is required`);
  const out: ParsedPolicy = { default: parseList(doc.default, `${name}.default`), transports: {} };
  if (doc.transports !== undefined) {
    if (!isObject(doc.transports)) throw new PolicyFileError(`${name}.transports must be an object`);
    for (const [transport, scopes] of Object.entries(doc.transports)) {
      if (!isObject(scopes)) throw new PolicyFileError(`${name}.transports.${transport} must be an object of scopes`);
      out.transports[transport] = {};
      for (const [scope, list] of Object.entries(scopes)) {
        out.transports[transport]![scope] = parseList(list, `${name}.transports.${transport}["${scope}"]`);
      }
    }
  }
  return out;
}

/**
 * Resolves every requirement's keys with `key(pathOrData, isData)` and every keyless one with `keyless(fulcio)`;
 * reading files (I/O) is the caller's.
 */
export function resolvePolicy(
  p: ParsedPolicy,
  key: (source: string, isData: boolean) => TrustedKey,
  keyless: (f: RawFulcio) => KeylessTrust = () => {
    throw new PolicyFileError('keyless requirements need a resolver');
  },
): TrustPolicy {
  const resolve = (list: RawRequirement[]): TrustRequirement[] =>
    list.map((r): TrustRequirement => {
      if (r.type !== 'sigstoreSigned') return r;
      const keys = [...r.keyPaths.map((k) => key(k, false)), ...r.keyDatas.map((k) => key(k, true))];
      return r.fulcio
        ? { type: 'sigstoreSigned', keys, keyless: keyless(r.fulcio), signedIdentity: r.signedIdentity }
        : { type: 'sigstoreSigned', keys, signedIdentity: r.signedIdentity };
    });
  const transports: TrustPolicy['transports'] = {};
  for (const [t, scopes] of Object.entries(p.transports)) {
    transports[t] = {};
    for (const [s, list] of Object.entries(scopes)) transports[t]![s] = resolve(list);
  }
  return { default: resolve(p.default), transports };
}

/** The scopes an image in a registry matches, most specific first, as containers/image's docker transport lists them. */
export function dockerScopes(ref: Reference): string[] {
  const name = `${ref.registry}/${ref.repository}`;
  const out: string[] = [];
  // The identity itself: name with tag, else with digest (containers/image refuses a reference with both).
  if (ref.tag) out.push(`${name}:${ref.tag}`);
  else if (ref.digest) out.push(`${name}@${ref.digest}`);
  let n = name;
  for (;;) {
    out.push(n);
    const i = n.lastIndexOf('/');
    if (i < 0) break;
    n = n.slice(0, i);
  }
  // Wildcard subdomains (`*.example.com`), without the port.
  let host = n.split(':')[0]!;
  for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.')) {
    host = host.slice(dot + 1);
    out.push(`*.${host}`);
  }
  return out;
}

/** The scopes an OCI layout image matches: `DIR:REF`, then DIR and its parents (never `/`). */
export function layoutScopes(absDir: string, ref?: string): string[] {
  const out: string[] = [];
  if (ref) out.push(`${absDir}:${ref}`);
  let d = absDir.replace(/\/+$/, '');
  while (d && d !== '/') {
    out.push(d);
    const i = d.lastIndexOf('/');
    d = i <= 0 ? '' : d.slice(0, i);
  }
  return out;
}

/** Where an image lives, for a policy lookup: the transport's name and its scopes from most to least specific. */
export interface PolicySubject {
  transport: string;
  scopes: string[];
}

/** The requirements the most specific matching scope gives (then the transport's "" scope, then "default"), and which scope that was. */
export function requirementsFor(
  policy: TrustPolicy,
  subject: PolicySubject,
): { scope: string; requirements: TrustRequirement[] } {
  const scopes = policy.transports[subject.transport];
  if (scopes) {
    for (const s of subject.scopes) {
      const r = scopes[s];
      if (r) return { scope: `${subject.transport}:${s}`, requirements: r };
    }
    const d = scopes[''];
    if (d) return { scope: `${subject.transport}:"" (transport default)`, requirements: d };
  }
  return { scope: 'default', requirements: policy.default };
}

/** The policy subject of a registry image. */
export function dockerSubject(ref: Reference): PolicySubject {
  return { transport: 'docker', scopes: dockerScopes(ref) };
}
