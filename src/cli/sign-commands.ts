import { InvalidArgumentError, type Command } from 'commander';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { access, writeFile } from 'node:fs/promises';
import type { TransportOptions } from '../transport/index.js';
import type { PolicyDecision } from '../sign/types.js';
import type { KeylessIdentity } from '../sign/fulcio.js';
import { fail } from './fail.js';
import { addBoolFlag, sluiceErrors } from './option-values.js';

// The signing code loads only when one of these commands runs.
const signApi = () => import('../sign/index.js');

interface RegistryFlags {
  creds?: string;
  authfile?: string;
  tlsVerify?: boolean;
}

function transportOptions(f: RegistryFlags): TransportOptions {
  const o: TransportOptions = {};
  if (f.creds) o.creds = f.creds;
  if (f.authfile) o.authFile = f.authfile;
  if (f.tlsVerify !== undefined) o.tlsVerify = f.tlsVerify;
  return o;
}

function registryFlags(cmd: Command): Command {
  cmd
    .option('--creds <user:password>', 'registry credentials')
    .option('--authfile <file>', 'auth file (Docker config format; default ~/.docker/config.json)');
  addBoolFlag(cmd, '--tls-verify', 'verify the registry TLS (the default); =false also allows plain HTTP');
  return sluiceErrors(cmd);
}

/** Asks on the terminal without echoing what is typed; undefined when there is no terminal. */
function terminalPrompt(): ((q: string) => Promise<string>) | undefined {
  if (!process.stdin.isTTY) return undefined;
  return (question) =>
    new Promise((resolve) => {
      process.stderr.write(question);
      const muted = new Writable({ write: (_c, _e, cb) => cb() });
      const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
      rl.question('', (answer) => {
        rl.close();
        process.stderr.write('\n');
        resolve(answer);
      });
    });
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function ruleValue(v: string): string {
  // Only the shape is checked here (the parser loads with the signing code), for a one-line error.
  if (
    !/^(matchExact|matchRepoDigestOrExact|matchRepository|exactReference:.+|exactRepository:.+|remapIdentity:.+=.+)$/.test(
      v,
    )
  ) {
    throw new InvalidArgumentError(
      `expected matchExact, matchRepoDigestOrExact, matchRepository, exactReference:REF, exactRepository:REPO or remapIdentity:PREFIX=SIGNEDPREFIX, got "${v}"`,
    );
  }
  return v;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function keyGenerate(f: { outputKeyPrefix: string; passwordFile?: string; force?: boolean }): Promise<void> {
  const { generateKeyPair, readPassword } = await signApi();
  const priv = `${f.outputKeyPrefix}.key`;
  const pub = `${f.outputKeyPrefix}.pub`;
  for (const p of [priv, pub]) if (!f.force && (await exists(p))) fail(`${p} exists: remove it or pass --force`);
  const prompt = terminalPrompt();
  let password = await readPassword({ file: f.passwordFile, prompt }, 'Enter password for private key: ');
  if (!f.passwordFile && process.env.COSIGN_PASSWORD === undefined && prompt) {
    const again = await prompt('Enter password for private key again: ');
    if (again !== password) fail('the passwords do not match');
  }
  const pair = await generateKeyPair(password);
  password = '';
  await writeFile(priv, pair.privateKey, { mode: 0o600 });
  await writeFile(pub, pair.publicKey, { mode: 0o644 });
  process.stdout.write(`Private key written to ${priv}\nPublic key written to ${pub} (${pair.fingerprint})\n`);
}

interface SignFlags extends RegistryFlags {
  key: string;
  identity?: string;
  bundle?: boolean;
  recursive?: boolean;
  passwordFile?: string;
  json?: boolean;
}

async function signCommand(image: string, f: SignFlags): Promise<void> {
  const { readSigningKey, signImage } = await signApi();
  const key = await readSigningKey(f.key, { file: f.passwordFile, prompt: terminalPrompt() });
  const opts: Parameters<typeof signImage>[2] = { transport: transportOptions(f) };
  if (f.identity) opts.identity = f.identity;
  if (f.bundle) opts.bundle = true;
  if (f.recursive) opts.recursive = true;
  const r = await signImage(image, key, opts);
  if (f.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const line = (digest: string, w: { written: string; added: boolean }) =>
    w.added
      ? `Signed ${digest} as ${r.identity || '(no name)'} with ${r.keyFingerprint}: ${w.written}\n`
      : `${digest} already carries this signature (${w.written})\n`;
  process.stdout.write(line(r.digest, r));
  for (const c of r.children ?? []) process.stdout.write(line(c.digest, c));
  if (r.missing?.length) process.stderr.write(`not signed, not held here: ${r.missing.join(', ')}\n`);
}

interface VerifyFlags extends RegistryFlags {
  key?: string[];
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  certificateOidcIssuerRegexp?: string;
  certificateGithubWorkflowRepository?: string;
  certificateGithubWorkflowRef?: string;
  certificateGithubWorkflowTrigger?: string;
  certificateGithubWorkflowSha?: string;
  trustedRoot?: string[];
  trustPolicy?: string;
  truststore?: string;
  identity?: string;
  identityRule?: string;
  policy?: string;
  json?: boolean;
}

function printDecision(description: string, digest: string, d: PolicyDecision): void {
  const lines = [`${description} (${digest}): ${d.allowed ? 'verified' : 'NOT verified'}`];
  if (d.scope) lines.push(`  policy scope: ${d.scope}`);
  for (const r of d.results) {
    lines.push(`  requirement ${r.requirement}: ${r.satisfied ? 'satisfied' : 'not satisfied'}`);
    if (r.keysTried.length) lines.push(`    keys: ${r.keysTried.join(', ')}`);
    for (const s of r.signatures) lines.push(`    ${s.accepted ? 'ok ' : 'no '} ${s.where}: ${s.reason}`);
    if (r.signatures.length === 0 && !r.satisfied) lines.push(`    ${r.summary}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function verifyCommand(image: string, f: VerifyFlags): Promise<void> {
  const api = await signApi();
  const keyless = keylessOf(f);
  if (f.policy && (f.key?.length || f.identity || f.identityRule || keyless)) {
    fail('--policy gives keys and identity rules itself: drop --key, --identity, --identity-rule and --certificate-*');
  }
  if (!f.policy && !f.key?.length && !keyless && !f.trustPolicy) {
    fail(
      'say whom to trust: --key FILE (repeatable), --certificate-identity(-regexp) with --certificate-oidc-issuer(-regexp), --policy FILE or --trust-policy FILE',
    );
  }
  if (f.identity && f.identityRule) fail('--identity and --identity-rule exclude each other');
  const opts: Parameters<typeof api.verifyImage>[1] = { transport: transportOptions(f) };
  if (f.trustPolicy) opts.notation = api.loadNotationPolicy(f.trustPolicy, f.truststore ?? notationTruststore());
  if (f.policy) opts.policy = await api.loadPolicyFile(f.policy);
  else {
    opts.keys = await api.readPublicKeys(f.key ?? []);
    if (keyless) {
      const roots = f.trustedRoot?.length ? f.trustedRoot.map((p) => api.readTrustedRoot(p)) : [api.publicGoodRoot()];
      opts.keyless = { roots, identities: [api.checkKeylessIdentity(keyless)] };
    }
    if (f.identityRule) opts.identityRule = api.parseIdentityRule(f.identityRule);
    // --identity NAME: the signature must name NAME (exactly with a tag or digest, else any tag of it).
    if (f.identity)
      opts.identityRule = /[:@][^/]*$/.test(f.identity)
        ? api.parseIdentityRule(`exactReference:${f.identity}`)
        : api.parseIdentityRule(`exactRepository:${f.identity}`);
  }
  const r = await api.verifyImage(image, opts);
  if (f.json) {
    process.stdout.write(
      `${JSON.stringify({ image: r.description, digest: r.image.digest, dockerReference: r.image.dockerReference, searched: r.discovery.searched, ...r.decision }, null, 2)}\n`,
    );
  } else {
    printDecision(r.description, r.image.digest, r.decision);
  }
  if (!r.decision.allowed) {
    process.stderr.write(`sluice: verification failed: ${r.decision.summary}\n`);
    process.exitCode = 1;
  }
}

// Where notation keeps trust stores: $XDG_CONFIG_HOME/notation/truststore (Linux).
function notationTruststore(): string {
  const base = process.env.XDG_CONFIG_HOME || `${process.env.HOME ?? ''}/.config`;
  return `${base}/notation/truststore`;
}

// cosign's flags, as `cosign verify` reads them: identity and issuer are both required, each exact or a regexp.
function keylessOf(f: VerifyFlags): KeylessIdentity | undefined {
  const gh = {
    repository: f.certificateGithubWorkflowRepository,
    ref: f.certificateGithubWorkflowRef,
    trigger: f.certificateGithubWorkflowTrigger,
    sha: f.certificateGithubWorkflowSha,
  };
  const any = [
    f.certificateIdentity,
    f.certificateIdentityRegexp,
    f.certificateOidcIssuer,
    f.certificateOidcIssuerRegexp,
    ...Object.values(gh),
  ].some((v) => v !== undefined);
  if (!any) return undefined;
  if ((f.certificateIdentity === undefined) === (f.certificateIdentityRegexp === undefined))
    fail('keyless: give exactly one of --certificate-identity and --certificate-identity-regexp');
  if ((f.certificateOidcIssuer === undefined) === (f.certificateOidcIssuerRegexp === undefined))
    fail('keyless: give exactly one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp');
  const id: KeylessIdentity = {};
  if (f.certificateIdentity !== undefined) id.subject = f.certificateIdentity;
  if (f.certificateIdentityRegexp !== undefined) id.subjectRegExp = f.certificateIdentityRegexp;
  if (f.certificateOidcIssuer !== undefined) id.issuer = f.certificateOidcIssuer;
  if (f.certificateOidcIssuerRegexp !== undefined) id.issuerRegExp = f.certificateOidcIssuerRegexp;
  const github = Object.fromEntries(Object.entries(gh).filter(([, v]) => v !== undefined));
  if (Object.keys(github).length) id.github = github;
  return id;
}

function run<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  return async (...a: A) => {
    try {
      await fn(...a);
    } catch (e) {
      fail((e as Error).message);
    }
  };
}

/** `sluice key generate`, `sluice sign`, `sluice verify`. */
export function registerSignCommands(program: Command): void {
  const key = program.command('key').description('cosign-compatible signing keys');
  sluiceErrors(
    key
      .command('generate')
      .description(
        'write an ECDSA P-256 key pair as cosign does: PREFIX.key (encrypted; password from --password-file, COSIGN_PASSWORD or a prompt) and PREFIX.pub',
      )
      .option('--output-key-prefix <prefix>', 'file name prefix', 'cosign')
      .option('--password-file <file>', 'read the password from this file')
      .option('--force', 'overwrite existing key files'),
  ).action(run(keyGenerate));

  const sign = program
    .command('sign')
    .description(
      "sign an image as cosign does: a simple-signing signature under sha256-<hex>.sig (or, with --bundle, cosign 3's sigstore bundle referrer)",
    )
    .argument('<image>', 'docker://HOST/REPO[:TAG|@DIGEST] or oci:DIR[:REF]')
    .requiredOption('--key <file>', 'cosign private key (ENCRYPTED SIGSTORE/COSIGN PRIVATE KEY)')
    .option(
      '--identity <name>',
      'the image name the signature binds (default: the reference as given; required for oci:)',
    )
    .option(
      '--bundle',
      'write a sigstore bundle (DSSE in-toto statement) as an OCI 1.1 referrer instead of the .sig tag',
    )
    .option(
      '--recursive',
      'for an index, sign every platform manifest too (as cosign --recursive): skopeo and podman check the instance they pull',
    )
    .option('--password-file <file>', 'read the key password from this file (else COSIGN_PASSWORD, else a prompt)')
    .option('--json', 'print what was written as JSON');
  registryFlags(sign).action(run(signCommand));

  const verify = program
    .command('verify')
    .description(
      'check an image’s signatures (.sig tag, referrers API, sha256-<hex> tag) against keys and an identity rule, or a containers-policy.json; exit 1 when not verified',
    )
    .argument('<image>', 'docker://HOST/REPO[:TAG|@DIGEST] or oci:DIR[:REF]')
    .option('--key <file>', 'trusted public key (repeatable)', collect)
    .option(
      '--identity <name>',
      'the name the signature must bind: exactly, with a tag or digest; else any tag of that repository',
    )
    .option(
      '--identity-rule <rule>',
      'matchRepoDigestOrExact (default), matchExact, matchRepository, exactReference:REF, exactRepository:REPO, remapIdentity:PREFIX=SIGNEDPREFIX',
      ruleValue,
    )
    .option(
      '--certificate-identity <subject>',
      'keyless: the certificate SAN (email or URI) the signer must have, exactly',
    )
    .option(
      '--certificate-identity-regexp <re>',
      'keyless: the SAN must match this regular expression (unanchored, as cosign)',
    )
    .option('--certificate-oidc-issuer <url>', 'keyless: the OIDC issuer the certificate must name, exactly')
    .option('--certificate-oidc-issuer-regexp <re>', 'keyless: the OIDC issuer must match this regular expression')
    .option(
      '--certificate-github-workflow-repository <owner/repo>',
      'keyless: the GitHub repository the workflow ran in',
    )
    .option(
      '--certificate-github-workflow-ref <ref>',
      'keyless: the git ref the workflow ran for (refs/tags/v1; refs/tags/* for any tag)',
    )
    .option(
      '--certificate-github-workflow-trigger <event>',
      'keyless: the event that started the workflow (push, release, ...)',
    )
    .option('--certificate-github-workflow-sha <sha>', 'keyless: the commit the workflow ran at')
    .option(
      '--trusted-root <file>',
      'keyless: a sigstore trusted_root.json (repeatable; default: the public-good root shipped with Sluice)',
      collect,
    )
    .option(
      '--trust-policy <file>',
      "notation's trustpolicy.json: also require a Notary Project signature as it says for the image's name",
    )
    .option(
      '--truststore <dir>',
      "notation's trust store folder (x509/<type>/<name>/); default $XDG_CONFIG_HOME/notation/truststore",
    )
    .option(
      '--policy <file>',
      'a containers-policy.json (default, transports.docker/oci scopes; sigstoreSigned with keys or fulcio, reject, insecureAcceptAnything)',
    )
    .option('--json', 'print the decision and every signature considered as JSON');
  registryFlags(verify).action(run(verifyCommand));
}
